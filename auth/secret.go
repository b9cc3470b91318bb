package auth

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is the cost HashPassword hashes with (nats-server's
// default). A login costs the server one hash of this cost, about 50 ms.
const BcryptCost = 11

// MinPasswordLen is the shortest password HashPassword takes.
const MinPasswordLen = 8

// HashPassword returns password's bcrypt hash for a users file.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("the password has %d bytes; at least %d are needed", len(password), MinPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// bcryptHash is nats-server's own test for a bcrypt password.
var bcryptHash = regexp.MustCompile(`^\$2[abxy]\$\d{2}\$.*`)

func isBcrypt(s string) bool { return bcryptHash.MatchString(s) }

// NewNkey makes a user nkey: its seed (the secret the user keeps, as a
// file for --nkey) and its public key (for the users file).
func NewNkey() (seed []byte, public string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", fmt.Errorf("make nkey: %w", err)
	}
	defer kp.Wipe() // it wipes the seed it holds: return a copy
	s, err := kp.Seed()
	if err != nil {
		return nil, "", fmt.Errorf("make nkey: %w", err)
	}
	seed = bytes.Clone(s)
	if public, err = kp.PublicKey(); err != nil {
		return nil, "", fmt.Errorf("make nkey: %w", err)
	}
	return seed, public, nil
}
