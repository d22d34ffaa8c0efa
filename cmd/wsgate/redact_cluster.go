package main

import (
	"net/url"
	"strings"
)

// redactStoreArg hides cluster_store's secrets: a password= parameter and
// the password of the address's user information.
func redactStoreArg(a string) string {
	if strings.HasPrefix(a, "password=") {
		return "password=" + redacted
	}
	u, err := url.Parse(a)
	if err != nil || u.User == nil {
		return a
	}
	if _, ok := u.User.Password(); !ok {
		return a
	}
	u.User = url.UserPassword(u.User.Username(), redacted)
	s, _ := url.PathUnescape(u.String())
	return s
}
