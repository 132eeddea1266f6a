package mmds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Bounds of a session token's lifetime, in seconds (Firecracker's).
const (
	MinTokenTTL = 1
	MaxTokenTTL = 21600
)

// tokenPath is where a version 2 guest asks for a session token.
const tokenPath = "/latest/api/token"

// maxTokenLen bounds a token the guest sends back before any work on it.
const maxTokenLen = 128

var errBadTTL = fmt.Errorf("token lifetime must be %d to %d seconds", MinTokenTTL, MaxTokenTTL)

// tokens issues and checks session tokens without keeping them: a token is
// its expiry and an HMAC of it under a key that lives as long as the
// Stack's tokens do, so a guest asking for any number of tokens costs no
// memory.
type tokens struct {
	key [32]byte
	now func() time.Time
}

func newTokens(now func() time.Time) (*tokens, error) {
	t := &tokens{now: now}
	if _, err := rand.Read(t.key[:]); err != nil {
		return nil, fmt.Errorf("MMDS token key: %w", err)
	}
	return t, nil
}

func (t *tokens) mac(expiry []byte) []byte {
	h := hmac.New(sha256.New, t.key[:])
	h.Write(expiry)
	return h.Sum(nil)
}

// issue returns a token valid for ttl seconds.
func (t *tokens) issue(ttl int64) (string, error) {
	if ttl < MinTokenTTL || ttl > MaxTokenTTL {
		return "", errBadTTL
	}
	var b [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.now().Add(time.Duration(ttl)*time.Second).UnixNano()))
	copy(b[8:], t.mac(b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

var errBadToken = errors.New("MMDS token not valid")

// check reports whether tok is a token issued here that has not expired.
func (t *tokens) check(tok string) error {
	if len(tok) > maxTokenLen {
		return errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 8+sha256.Size {
		return errBadToken
	}
	if !hmac.Equal(b[8:], t.mac(b[:8])) {
		return errBadToken
	}
	if t.now().UnixNano() >= int64(binary.BigEndian.Uint64(b[:8])) {
		return errBadToken
	}
	return nil
}
