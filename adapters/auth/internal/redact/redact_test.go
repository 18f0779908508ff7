package redact

import (
	"fmt"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tt := range []struct {
		s       string
		secrets []string
		want    string
	}{
		{"no secrets here", []string{"hunter2"}, "no secrets here"},
		{"pw=hunter2, again hunter2", []string{"hunter2"}, "pw=[redacted], again [redacted]"},
		{"empty secrets are ignored", []string{"", ""}, "empty secrets are ignored"},
		{"abcdef", []string{"abc", "abcdef"}, "[redacted]"},
		{"abc and abcdef", []string{"abc", "abcdef"}, "[redacted] and [redacted]"},
	} {
		if got := String(tt.s, tt.secrets...); got != tt.want {
			t.Errorf("String(%q, %q) = %q, want %q", tt.s, tt.secrets, got, tt.want)
		}
	}
}

func TestContains(t *testing.T) {
	if !Contains("x hunter2 y", "", "hunter2") {
		t.Error("Contains missed a secret")
	}
	if Contains("x y", "", "hunter2") {
		t.Error("Contains found a secret that is not there")
	}
	if Contains("anything", "") {
		t.Error("the empty secret is in every string, and must not count")
	}
}

func TestSecretNeverFormats(t *testing.T) {
	const pw = "hunter2"
	s := NewSecret(pw)
	if s.Reveal() != pw {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
	type holder struct {
		name   string
		secret Secret
		ptr    *Secret
	}
	h := holder{name: "x", secret: s, ptr: &s}
	for _, v := range []any{s, &s, h, &h, []Secret{s}, map[string]Secret{"k": s}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, pw) {
				t.Errorf("Sprintf(%s, %T) = %s", verb, v, got)
			}
		}
	}
	if !(Secret{}).IsZero() || s.IsZero() {
		t.Error("IsZero")
	}
}
