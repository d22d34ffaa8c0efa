package wsframe

// State packs u into a number, so that a validation in progress can move
// to another process (a binary upgrade hands tunnels over).
func (u UTF8) State() uint32 {
	return uint32(u.need) | uint32(u.lo)<<8 | uint32(u.hi)<<16
}

// UTF8FromState unpacks what State packed.
func UTF8FromState(s uint32) UTF8 {
	return UTF8{need: uint8(s), lo: uint8(s >> 8), hi: uint8(s >> 16)}
}
