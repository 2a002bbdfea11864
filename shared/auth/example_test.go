package auth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsnotify/wsnotify/shared/auth"
)

// wsnotifyToken is docs/keys-and-tokens.md's Go snippet: what an app's backend runs to
// give a browser a token instead of an API key. audience and issuer are the
// ones the service is configured to require.
func wsnotifyToken(ownerID string, secret []byte, audience, issuer string) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   ownerID,
		Audience:  jwt.ClaimStrings{audience},
		Issuer:    issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	}).SignedString(secret)
}

// A backend mints a token with the first secret; the service, holding the
// new and the old secret during a rotation, accepts it.
func ExampleTokenVerifier_Verify() {
	newSecret := []byte("new-secret-0123456789abcdefghijklmnop")
	oldSecret := []byte("old-secret-0123456789abcdefghijklmnop")
	token, err := wsnotifyToken("acct_42", newSecret, "wsnotify", "https://app.example.com")
	if err != nil {
		panic(err)
	}
	v := auth.NewTokenVerifier(auth.StaticSecrets{newSecret, oldSecret}, auth.TokenConfig{
		Audience: "wsnotify", Issuer: "https://app.example.com"})
	owner, err := v.Verify(context.Background(), token)
	fmt.Println(owner, err)
	// Output: acct_42 <nil>
}
