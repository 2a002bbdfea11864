package app

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
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
		cfg, err := FromEnv(S3UploadFunction, lookupFrom(full))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TableName != "wsnotify-connections" || cfg.FanoutConcurrency != 64 || cfg.LogLevel != slog.LevelDebug || cfg.UploadPrefix != "uploads/" ||
			cfg.TokenSecretID != "" || cfg.TokenMaxTTL != 0 {
			t.Fatalf("cfg = %+v", cfg)
		}
	})
	t.Run("a function does not see the variables it does not read", func(t *testing.T) {
		cfg, err := FromEnv(ConnectFunction, lookupFrom(full))
		if err != nil || cfg.UploadPrefix != "" || cfg.FanoutConcurrency != 0 {
			t.Fatalf("cfg = %+v, %v", cfg, err)
		}
	})
	t.Run("every problem is named at once, with the function", func(t *testing.T) {
		_, err := FromEnv(JobEventsFunction, lookupFrom(map[string]string{
			EnvFanoutConcurrency: "lots",
			EnvLogLevel:          "chatty",
			EnvDynamoDBEndpoint:  "localhost:8000",
			EnvTokenMaxTTL:       "-1h",
		}))
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"configuration of JobEventsFunction: ", EnvTableName + " is not set", EnvManagementEndpoint + " is not set",
			EnvFanoutConcurrency + " must be", EnvLogLevel + " must be", EnvDynamoDBEndpoint + `: "localhost:8000" is not`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	t.Run("an endpoint that is not a URL is refused", func(t *testing.T) {
		env := map[string]string{EnvTableName: "t", EnvManagementEndpoint: "abc123def4/prod"}
		if _, err := FromEnv(DisconnectFunction, lookupFrom(env)); err == nil || !strings.Contains(err.Error(), EnvManagementEndpoint) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("DefaultFunction reads the store, the Management API and the history bound for resume", func(t *testing.T) {
		cfg, err := FromEnv(DefaultFunction, lookupFrom(map[string]string{EnvTableName: "t", EnvManagementEndpoint: full[EnvManagementEndpoint],
			EnvHistoryMaxEvents: "500", EnvHistoryTTL: "1h"}))
		if err != nil || cfg.TableName != "t" || cfg.HistoryMaxEvents != 500 || cfg.HistoryTTL != 0 {
			t.Fatalf("cfg = %+v, %v (HISTORY_TTL is not its: it records nothing)", cfg, err)
		}
	})
	t.Run("PublishFunction hands off above HANDOFF_ABOVE, 100 unless set; the others never", func(t *testing.T) {
		env := map[string]string{EnvTableName: "t", EnvManagementEndpoint: full[EnvManagementEndpoint], EnvFanoutFunction: "wsnotify-FanoutFunction-X"}
		cfg, err := FromEnv(PublishFunction, lookupFrom(env))
		if err != nil || cfg.FanoutFunction != "wsnotify-FanoutFunction-X" || cfg.HandoffAbove != DefaultHandoffAbove || DefaultHandoffAbove != 100 {
			t.Fatalf("cfg = %+v, %v", cfg, err)
		}
		env[EnvHandoffAbove] = "0"
		if cfg, err = FromEnv(PublishFunction, lookupFrom(env)); err != nil || cfg.HandoffAbove != 0 {
			t.Fatalf("HANDOFF_ABOVE=0: cfg = %+v, %v", cfg, err)
		}
		for _, bad := range []string{"-1", "many", "100001"} {
			env[EnvHandoffAbove] = bad
			if _, err := FromEnv(PublishFunction, lookupFrom(env)); err == nil || !strings.Contains(err.Error(), EnvHandoffAbove+" must be") {
				t.Errorf("HANDOFF_ABOVE=%s: %v, want an error naming it", bad, err)
			}
		}
		for _, f := range []Function{JobEventsFunction, S3UploadFunction, FanoutFunction} {
			if cfg, err := FromEnv(f, lookupFrom(env)); err != nil || cfg.FanoutFunction != "" {
				t.Errorf("%s: cfg = %+v, %v; want no hand-off", f, cfg, err)
			}
		}
	})
	t.Run("the history bounds are checked", func(t *testing.T) {
		env := map[string]string{EnvTableName: "t", EnvManagementEndpoint: full[EnvManagementEndpoint], EnvHistoryTTL: "36h", EnvHistoryMaxEvents: "250"}
		cfg, err := FromEnv(JobEventsFunction, lookupFrom(env))
		if err != nil || cfg.HistoryTTL != 36*time.Hour || cfg.HistoryMaxEvents != 250 {
			t.Fatalf("cfg = %+v, %v", cfg, err)
		}
		for name, bad := range map[string]string{EnvHistoryTTL: "30s", EnvHistoryMaxEvents: "0"} {
			env := maps.Clone(env)
			env[name] = bad
			if _, err := FromEnv(JobEventsFunction, lookupFrom(env)); err == nil || !strings.Contains(err.Error(), name+" must be") {
				t.Errorf("%s = %q: err = %v", name, bad, err)
			}
		}
	})
	t.Run("a bad origin pattern is refused by name", func(t *testing.T) {
		env := map[string]string{EnvTableName: "t", EnvManagementEndpoint: full[EnvManagementEndpoint], EnvAllowedOrigins: "https://app.example.com,"}
		if _, err := FromEnv(ConnectFunction, lookupFrom(env)); err == nil || !strings.Contains(err.Error(), EnvAllowedOrigins+`: origin pattern "" is empty`) {
			t.Fatalf("err = %v", err)
		}
		env[EnvAllowedOrigins] = "https://app.example.com, *.example.org"
		if _, err := FromEnv(ConnectFunction, lookupFrom(env)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the signed-token settings of ConnectFunction", func(t *testing.T) {
		env := map[string]string{EnvTableName: "t", EnvManagementEndpoint: full[EnvManagementEndpoint],
			EnvTokenSecretID: "wsnotify/token-secrets", EnvTokenMaxTTL: "30m", EnvTokenAudience: "wsnotify", EnvTokenIssuer: "https://app.example.com"}
		cfg, err := FromEnv(ConnectFunction, lookupFrom(env))
		if err != nil || cfg.TokenSecretID != "wsnotify/token-secrets" || cfg.TokenMaxTTL != 30*time.Minute ||
			cfg.TokenAudience != "wsnotify" || cfg.TokenIssuer != "https://app.example.com" {
			t.Fatalf("cfg = %+v, %v", cfg, err)
		}
		for _, bad := range []string{"forever", "-1h", "0s"} {
			env[EnvTokenMaxTTL] = bad
			if _, err := FromEnv(ConnectFunction, lookupFrom(env)); err == nil || !strings.Contains(err.Error(), EnvTokenMaxTTL+" must be a positive duration") {
				t.Errorf("%s = %q: err = %v", EnvTokenMaxTTL, bad, err)
			}
		}
	})
	t.Run("an unknown function is refused", func(t *testing.T) {
		if _, err := FromEnv("ReplayFunction", lookupFrom(full)); err == nil || !strings.Contains(err.Error(), `unknown function "ReplayFunction"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestFromEnvLooksUpExactlyTheVarsOfItsFunction holds the table to the
// loader: what Vars lists is what FromEnv asks for, once each.
func TestFromEnvLooksUpExactlyTheVarsOfItsFunction(t *testing.T) {
	if got := Functions(); !slices.IsSorted(got) {
		t.Fatalf("Functions() = %v, not sorted", got)
	}
	for _, f := range Functions() {
		var asked, listed []string
		_, _ = FromEnv(f, func(name string) (string, bool) { asked = append(asked, name); return "", false })
		for _, v := range f.Vars() {
			listed = append(listed, v.Name)
		}
		if len(listed) == 0 || !slices.Equal(asked, listed) {
			t.Errorf("%s: FromEnv looked up %v, Vars lists %v", f, asked, listed)
		}
	}
	if Function("ReplayFunction").Vars() != nil {
		t.Error("an unknown function has variables")
	}
}

// TestNothingElseReadsTheEnvironment keeps the table complete: the mains
// and the packages they link read no variable except through FromEnv, which
// build.go calls with os.LookupEnv. (The SDK's own AWS_* variables are set
// by the Lambda runtime.)
func TestNothingElseReadsTheEnvironment(t *testing.T) {
	readers := map[string][]string{"os": {"Getenv", "LookupEnv", "Environ", "ExpandEnv"}, "syscall": {"Getenv", "Environ"}}
	var found []string
	for _, root := range []string{"..", filepath.Join("..", "..", "functions")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testenv" { // test support, never linked into a main
				return fs.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			names := map[string]string{} // local name -> import path
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				name := filepath.Base(p)
				if imp.Name != nil {
					name = imp.Name.Name
				}
				names[name] = p
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && slices.Contains(readers[names[x.Name]], sel.Sel.Name) {
						found = append(found, filepath.ToSlash(path)+": "+names[x.Name]+"."+sel.Sel.Name)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"../app/build.go: os.LookupEnv"}; !slices.Equal(found, want) {
		t.Errorf("environment reads %q, want only %q: read a variable through the table in config.go", found, want)
	}
}
