package upstream

// Adopt counts a use of p that another process began: a tunnel handed over
// by a binary upgrade, which ends with Done as any other.
func (p *Peer) Adopt() { p.st.conns.Add(1) }
