// Package secrets seals the per-number secrets that lantel keeps in its
// store, so that neither the database file nor a backup of it holds them in
// plaintext: AES-256-GCM with a key kept in a file of its own beside the
// store (mode 0600), created at the first start.
//
// The server needs the secrets themselves (LTNP/1's AUTH is an HMAC keyed
// with the secret), so they are encrypted, not hashed. A backup without the
// key file restores everything but the secrets; keep the key file with the
// backups (once: it does not change).
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
)

// KeyLen is the key file's size.
const KeyLen = 32

// Box seals and opens secrets with one key.
type Box struct{ aead cipher.AEAD }

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeyLen {
		return nil, fmt.Errorf("secrets: key must be %d bytes, not %d", KeyLen, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// LoadOrCreate reads the key file at path, or creates it with a random key
// (mode 0600, refusing to overwrite) when it does not exist.
func LoadOrCreate(path string) (*Box, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, KeyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("secrets: create key file: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("secrets: write key file: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("secrets: read key file: %w", err)
	}
	b, err := New(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: key file %s: %w", path, err)
	}
	return b, nil
}

// ErrOpen: a sealed secret does not open with this key (another key file,
// or damage).
var ErrOpen = errors.New("secrets: sealed with another key, or damaged")

// Seal encrypts a secret: nonce || ciphertext.
func (b *Box) Seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, plain, nil), nil
}

// Open decrypts what Seal returned.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrOpen
	}
	p, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}

// Generate returns a new random secret for a number: 26 characters of
// base32 (A-Z, 2-7: what every phone's keypad and file format takes), 130
// bits.
func Generate() string { return rand.Text() }
