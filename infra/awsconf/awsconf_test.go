package awsconf

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// isolate clears the AWS configuration of the environment and points the
// shared files at nothing, so that the machine's own configuration does not
// leak in.
func isolate(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(name, "")
	}
}

func TestLoad(t *testing.T) {
	ctx := context.Background()
	t.Run("a local endpoint gets local credentials and the local region", func(t *testing.T) {
		isolate(t)
		cfg, err := Load(ctx, "http://127.0.0.1:4567")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil || creds.AccessKeyID != localAccessKeyID || cfg.Region != LocalRegion {
			t.Fatalf("credentials %q (%v), region %q", creds.AccessKeyID, err, cfg.Region)
		}
	})
	t.Run("a local endpoint keeps the credentials and region the environment sets", func(t *testing.T) {
		isolate(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		t.Setenv("AWS_REGION", "eu-west-1")
		cfg, err := Load(ctx, "http://127.0.0.1:4567")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil || creds.AccessKeyID != "AKIDENV" || cfg.Region != "eu-west-1" {
			t.Fatalf("credentials %q (%v), region %q", creds.AccessKeyID, err, cfg.Region)
		}
	})
	t.Run("AWS itself needs a region", func(t *testing.T) {
		isolate(t)
		if _, err := Load(ctx, ""); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Fatalf("err = %v, want one naming AWS_REGION", err)
		}
	})
}
