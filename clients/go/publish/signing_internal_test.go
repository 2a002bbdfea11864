package publish

import "testing"

func TestOnlyAFunctionURLsHostIsSignedForLambda(t *testing.T) {
	for endpoint, want := range map[string][2]string{
		"https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws":  {"lambda", "eu-west-1"},
		"https://ABCDEFGHIJKLMNOPQRSTUVWXYZ012345.LAMBDA-URL.EU-WEST-1.ON.AWS/": {"lambda", "eu-west-1"},
		"https://abc.lambda-url.ap-southeast-2.on.aws.:443":                     {"lambda", "ap-southeast-2"},
		"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com":                {"execute-api", ""},
		"https://abc.lambda-url.eu-west-1.on.aws.example.com":                   {"execute-api", ""},
		"https://lambda-url.eu-west-1.on.aws":                                   {"execute-api", ""},
		"https://x.lambda-url..on.aws":                                          {"execute-api", ""},
		"http://127.0.0.1:8000":                                                 {"execute-api", ""},
	} {
		service, region, err := signingFor(endpoint, "")
		if err != nil || service != want[0] || region != want[1] {
			t.Errorf("%s: signed for %s in %q (%v), want %s in %q", endpoint, service, region, err, want[0], want[1])
		}
	}
}
