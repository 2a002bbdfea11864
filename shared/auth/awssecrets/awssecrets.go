// Package awssecrets is the cloud's auth.SecretSource: it reads the secrets
// that sign tokens from one AWS Secrets Manager secret, once per Lambda
// container, on the first signed token it sees, and keeps them.
//
// The secret's SecretString is a JSON array of strings, the signing secret
// first and older ones after it while a rotation runs (auth.ParseSecretList);
// each at least auth.MinSecretBytes long.
package awssecrets

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/singleflight"

	"github.com/wsnotify/wsnotify/shared/auth"
)

// loadTimeout bounds the read of the secret. It is detached from the
// connect that triggers it, so that one client giving up does not fail the
// read the others wait for.
const loadTimeout = 5 * time.Second

// getSecretValueAPI is the one call the Source makes.
type getSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Source reads the token secrets from Secrets Manager once and caches them.
// A failed read is not cached: the next signed token tries again, and the
// connect that met the failure gets a 500, not a 401.
type Source struct {
	client   getSecretValueAPI
	secretID string
	secrets  atomic.Pointer[[][]byte]
	reads    singleflight.Group
}

var _ auth.SecretSource = (*Source)(nil)

// New returns a Source reading secretID (a secret's name or ARN) with client.
func New(client *secretsmanager.Client, secretID string) *Source {
	return &Source{client: client, secretID: secretID}
}

// TokenSecrets implements auth.SecretSource. Concurrent first calls share
// one read; no lock is held while it runs.
func (s *Source) TokenSecrets(ctx context.Context) ([][]byte, error) {
	if p := s.secrets.Load(); p != nil {
		return *p, nil
	}
	ch := s.reads.DoChan("", func() (any, error) {
		if p := s.secrets.Load(); p != nil {
			return *p, nil
		}
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		secrets, err := s.read(readCtx)
		if err != nil {
			return nil, err
		}
		s.secrets.Store(&secrets)
		return secrets, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([][]byte), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("read token secrets from Secrets Manager secret %s: %w", s.secretID, ctx.Err())
	}
}

func (s *Source) read(ctx context.Context) ([][]byte, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.secretID)})
	if err != nil {
		return nil, fmt.Errorf("read token secrets from Secrets Manager secret %s: %w", s.secretID, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf(`Secrets Manager secret %s holds binary data; token secrets are a SecretString, a JSON array of strings: ["secret 1", "secret 2"]`, s.secretID)
	}
	secrets, err := auth.ParseSecretList([]byte(*out.SecretString))
	if err != nil {
		return nil, fmt.Errorf("Secrets Manager secret %s: %w", s.secretID, err)
	}
	return secrets, nil
}
