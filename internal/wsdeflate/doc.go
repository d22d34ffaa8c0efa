// Package wsdeflate offloads permessage-deflate (RFC 7692) from one leg of a
// WebSocket tunnel: it negotiates the extension (Negotiate as a server,
// Offer and Accept as a client) and wraps that leg's connection (Wrap) so
// that the relay above it reads and writes plain, uncompressed frames.
// Messages read from the leg are inflated; messages written to it are
// deflated. Control frames and uncompressed messages pass untouched.
//
// By default neither side keeps a compression context between messages
// (no_context_takeover both ways) and the compressor is stateless, so a
// tunnel that is not in the middle of a message holds no compression
// memory at all. With context takeover a wrapped connection keeps the
// history the window bits allow (see Params.Memory).
package wsdeflate
