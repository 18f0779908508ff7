// Package redact keeps credentials out of the strings the auth adapters
// produce: error messages and the String and GoString of an Authenticator.
//
// It is shared by the packages under adapters/auth only.
package redact

import "strings"

// Mark stands in for a credential wherever one would have been printed.
const Mark = "[redacted]"

// String returns s with every occurrence of each non-empty secret replaced
// by Mark. Longer secrets are replaced first, so that a secret that
// contains another is not left half-printed.
func String(s string, secrets ...string) string {
	sorted := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		if secret != "" {
			sorted = append(sorted, secret)
		}
	}
	// Insertion sort, longest first: the list is two or three long.
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && len(sorted[j]) > len(sorted[j-1]); j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	for _, secret := range sorted {
		s = strings.ReplaceAll(s, secret, Mark)
	}
	return s
}

// Contains reports whether s holds any of the non-empty secrets.
func Contains(s string, secrets ...string) bool {
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			return true
		}
	}
	return false
}
