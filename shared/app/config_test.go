package app

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	full := map[string]string{
		EnvTableName:          "wsnotify-connections",
		EnvManagementEndpoint: "https://abc123def4.execute-api.eu-west-1.amazonaws.com/prod",
		EnvUploadPrefix:       "uploads/",
		EnvFanoutConcurrency:  "64",
		EnvLogLevel:           "debug",
		EnvTokenSecretID:      "wsnotify/token-secrets",
		EnvTokenMaxTTL:        "1h",
	}
	t.Run("a full environment is read", func(t *testing.T) {
		cfg, err := FromEnv(lookupFrom(full))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TableName != "wsnotify-connections" || cfg.FanoutConcurrency != 64 || cfg.LogLevel != slog.LevelDebug || cfg.UploadPrefix != "uploads/" ||
			cfg.TokenSecretID != "wsnotify/token-secrets" || cfg.TokenMaxTTL != time.Hour {
			t.Fatalf("cfg = %+v", cfg)
		}
	})
	t.Run("every problem is named at once", func(t *testing.T) {
		_, err := FromEnv(lookupFrom(map[string]string{
			EnvFanoutConcurrency: "lots",
			EnvLogLevel:          "chatty",
			EnvDynamoDBEndpoint:  "localhost:8000",
			EnvTokenMaxTTL:       "-1h",
		}))
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{EnvTableName + " is not set", EnvManagementEndpoint + " is not set",
			EnvFanoutConcurrency + " must be", EnvLogLevel + " must be", EnvTokenMaxTTL + " must be a positive duration", EnvDynamoDBEndpoint + `: "localhost:8000" is not`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	t.Run("an endpoint that is not a URL is refused", func(t *testing.T) {
		env := map[string]string{EnvTableName: "t", EnvManagementEndpoint: "abc123def4/prod"}
		if _, err := FromEnv(lookupFrom(env)); err == nil || !strings.Contains(err.Error(), EnvManagementEndpoint) {
			t.Fatalf("err = %v", err)
		}
	})
}
