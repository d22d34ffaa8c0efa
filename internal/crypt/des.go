package crypt

// DES is traditional crypt(3): a two-character salt perturbs DES's
// expansion, and a zero block is encrypted 25 times under the first eight
// characters of the password (seven bits each). The tables are FIPS 46's,
// one-based bit positions counted from the most significant bit.
func DES(password, setting string) string {
	if len(setting) < 2 || !isB64(setting[:2]) {
		return ""
	}
	salt := uint32(indexB64(setting[0]) | indexB64(setting[1])<<6)
	block := desCrypt(keyOf(password), salt, 25)
	return setting[:2] + encodeBlock(block)
}

// BSDi is BSDi's extended DES crypt ("_", four characters of rounds and
// four of salt, 24 bits each, least significant first): the whole
// password is folded into the key, eight characters at a time.
func BSDi(password, setting string) string {
	if len(setting) < 9 || setting[0] != '_' || !isB64(setting[1:9]) {
		return ""
	}
	var rounds, salt uint32
	for i := range 4 {
		rounds |= uint32(indexB64(setting[1+i])) << (6 * i)
		salt |= uint32(indexB64(setting[5+i])) << (6 * i)
	}
	if rounds == 0 {
		return ""
	}
	key := keyOf(password)
	for rest := password[min(8, len(password)):]; rest != ""; rest = rest[min(8, len(rest)):] {
		sub := subkeys(key)
		key = desEncrypt(key, &sub, &desE) ^ keyOf(rest) // the key encrypted with itself, then the next characters
	}
	return setting[:9] + encodeBlock(desCrypt(key, salt, int(rounds)))
}

// keyOf is the DES key of a password's first eight characters, seven bits
// each.
func keyOf(password string) uint64 {
	var key uint64
	for i := range 8 {
		var c byte
		if i < len(password) {
			c = password[i]
		}
		key = key<<8 | uint64(c<<1)
	}
	return key
}

// desCrypt encrypts a zero block count times under key, with salt bit i
// swapping bits i and i+24 of the expansion.
func desCrypt(key uint64, salt uint32, count int) uint64 {
	e := desE
	for k := range 24 {
		if salt>>k&1 != 0 {
			e[k], e[k+24] = e[k+24], e[k]
		}
	}
	sub := subkeys(key)
	var block uint64
	for range count {
		block = desEncrypt(block, &sub, &e)
	}
	return block
}

// encodeBlock is crypt's 11 characters of a 64-bit block, most
// significant bits first.
func encodeBlock(block uint64) string {
	out := make([]byte, 0, 11)
	for i := range 11 {
		shift := 58 - 6*i
		var v uint64
		if shift >= 0 {
			v = block >> uint(shift)
		} else {
			v = block << uint(-shift)
		}
		out = append(out, itoa64[v&0x3f])
	}
	return string(out)
}

func indexB64(c byte) int {
	for i := range len(itoa64) {
		if itoa64[i] == c {
			return i
		}
	}
	return 0
}

// permute picks, for each one-based position in table, that bit of in (a
// value of width bits) into the result, most significant first.
func permute(in uint64, width int, table []byte) uint64 {
	var out uint64
	for _, p := range table {
		out = out<<1 | in>>(uint(width)-uint(p))&1
	}
	return out
}

func subkeys(key uint64) [16]uint64 {
	cd := permute(key, 64, desPC1[:])
	c, d := cd>>28, cd&0xfffffff
	var ks [16]uint64
	for i, s := range desShifts {
		c = (c<<s | c>>(28-s)) & 0xfffffff
		d = (d<<s | d>>(28-s)) & 0xfffffff
		ks[i] = permute(c<<28|d, 56, desPC2[:])
	}
	return ks
}

func desEncrypt(block uint64, ks *[16]uint64, e *[48]byte) uint64 {
	b := permute(block, 64, desIP[:])
	l, r := b>>32, b&0xffffffff
	for i := range 16 {
		x := permute(r, 32, e[:]) ^ ks[i]
		var s uint64
		for j := range 8 {
			six := x >> uint(42-6*j) & 0x3f
			row := six>>4&2 | six&1
			col := six >> 1 & 0xf
			s = s<<4 | uint64(desS[j][row*16+col])
		}
		l, r = r, l^permute(s, 32, desP[:])
	}
	return permute(r<<32|l, 64, desFP[:])
}

var desIP = [64]byte{
	58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
	62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
	57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
	61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
}

var desFP = [64]byte{
	40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
	38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
	36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
	34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
}

var desE = [48]byte{
	32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
	16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
}

var desP = [32]byte{
	16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
	2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
}

var desPC1 = [56]byte{
	57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
	10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
	63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
	14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
}

var desPC2 = [48]byte{
	14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
	41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
}

var desShifts = [16]uint{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}

var desS = [8][64]byte{
	{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
		0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
		4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
		15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
	{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
		3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
		0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
		13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
	{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
		13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
		13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
		1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
	{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
		13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
		10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
		3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
	{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
		14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
		4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
		11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
	{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
		10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
		9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
		4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
	{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
		13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
		1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
		6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
	{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
		1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
		7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
		2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
}
