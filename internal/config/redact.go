package config

import "strings"

// RedactURL hides the user information of a URL or an address that an
// error quotes, parsed or not: a string that url.Parse refuses (a bad
// escape, a space, no scheme) may still carry a password. Everything from
// the start of the authority (after "scheme://", or the start of the
// string) to its last "@" becomes "xxxxx"; where an "@" is part of a path
// rather than of credentials, that hides too much, never too little.
func RedactURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return s[:start] + "xxxxx" + s[at:]
}
