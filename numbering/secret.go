package numbering

import (
	"bytes"
	"fmt"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// Sealer encrypts the per-number secrets kept in the store (see
// internal/secrets), so that the database and its backups hold none in
// plaintext.
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Authenticator checks, inside the transaction, that a request proves the
// secret of the number it is for (PROTOCOL.md, Security: TIME and AUTH).
// It is called for a number that has a secret, with the full number and
// the secret, and returns a Denied refusal when the proof fails, or an
// Unauthenticated one when the request carries no proof yet (the front
// asks for one). For a request that must prove a number nothing can prove
// (RegisterRequest.ProofRequired), it is called with a nil secret, so that
// the request is asked for a proof as any other: every answer then fails.
// A nil Authenticator proves nothing.
//
// It runs inside a transaction function, which may run more than once for
// one request (a read-first try, a retry, a group commit split in halves):
// a second call with the same arguments must give the same answer and
// have no further effect. Whatever it consumes (a digest's nonce count)
// is taken idempotently, for this request, or after the commit.
type Authenticator func(number string, secret []byte) error

// authenticate refuses a request for terminal number t when t has a secret
// that auth does not prove.
func (d *Directory) authenticate(tx store.Tx, cfg *Config, t string, auth Authenticator) error {
	secret, err := d.secretOf(tx, cfg, t)
	if err != nil || secret == nil {
		return err
	}
	if auth == nil {
		return domain.Errorf(domain.Denied, "%s has a secret: TIME and AUTH are required", cfg.Plan.Full(t))
	}
	return auth(cfg.Plan.Full(t), secret)
}

// secretOf returns the secret of terminal number t, or nil.
func (d *Directory) secretOf(tx store.Tx, cfg *Config, t string) ([]byte, error) {
	sealed := tx.Bucket(bktSecrets).Get([]byte(t))
	if sealed == nil {
		return nil, nil
	}
	if cfg.Sealer == nil {
		return nil, fmt.Errorf("numbering: %s has a secret but no key to open it", t)
	}
	secret, err := cfg.Sealer.Open(sealed)
	if err != nil {
		// Not the store's failure (its other writes go on): this node's
		// key file is not the one the secret was sealed with.
		return nil, domain.Errorf(domain.Unavailable, "the secret of %s cannot be opened with this node's key file (%v): copy the key file (lantel.db.key) of the node it was set on", cfg.Plan.Full(t), err)
	}
	return secret, nil
}

// Secret returns the secret of a number (short or full), or nil: for the
// fronts that must compute with it (a SIP digest, a provisioning file).
func (d *Directory) SecretTx(tx store.Tx, number string) ([]byte, error) {
	cfg := d.cfg.Load()
	t, err := cfg.Plan.Own(number)
	if err != nil {
		return nil, err
	}
	return d.secretOf(tx, cfg, t)
}

// putSecret applies a reservation's secret change (see Reservation.Secret).
func (d *Directory) putSecret(tx store.Tx, cfg *Config, r *Reservation) error {
	b := tx.Bucket(bktSecrets)
	switch {
	case r.Secret != "":
		if cfg.Sealer == nil {
			return fmt.Errorf("numbering: no key to seal the secret of %s", r.Number)
		}
		sealed, err := cfg.Sealer.Seal([]byte(r.Secret))
		if err != nil {
			return err
		}
		return b.Put([]byte(r.Number), sealed)
	case r.ClearSecret:
		return b.Delete([]byte(r.Number))
	}
	return nil
}

// checkSecret validates a reservation's new secret before anything is
// written.
func checkSecret(r *Reservation) error {
	if r.Secret != "" {
		return domain.ValidSecret(r.Secret)
	}
	return nil
}

// keyCheck holds, beside the numbers' secrets, a known text sealed with
// the key of the first node that opened the store: a node (or a restore)
// with another key file counts it among the secrets it cannot open, and
// says so at start, before any number's secret is set through another
// node and found unusable here.
var keyCheck = []byte("\x00key-check")

// NoteKeyTx seals the known text with the configured key when the store
// has none yet.
func (d *Directory) NoteKeyTx(tx store.Tx) error {
	cfg := d.cfg.Load()
	b := tx.Bucket(bktSecrets)
	if cfg.Sealer == nil || b.Get(keyCheck) != nil {
		return nil
	}
	sealed, err := cfg.Sealer.Seal([]byte("lantel: the key that seals this store's secrets"))
	if err != nil {
		return err
	}
	return b.Put(keyCheck, sealed)
}

func hasSecret(tx store.Tx, t string) bool { return tx.Bucket(bktSecrets).Get([]byte(t)) != nil }

// UnopenableSecrets counts the stored secrets that the configured key
// cannot open (a node of a cluster started with another key file, a
// restore without the key): their numbers cannot prove anything until the
// right key is in place or the secrets are set again.
// otherKey: the store's key check (NoteKeyTx) was sealed with another key
// (the store is another node's, or a backup's, and this node has its own
// key file), even when no number has a secret yet.
func (d *Directory) UnopenableSecrets(tx store.Tx) (n int, otherKey bool) {
	cfg := d.cfg.Load()
	_ = tx.Bucket(bktSecrets).ForEach(func(k, sealed []byte) error {
		opens := false
		if cfg.Sealer != nil {
			_, err := cfg.Sealer.Open(sealed)
			opens = err == nil
		}
		switch {
		case bytes.Equal(k, keyCheck):
			otherKey = !opens
		case !opens:
			n++
		}
		return nil
	})
	return n, otherKey
}
