// Package wsnotify holds what belongs to the repository as a whole, embedded:
// the SAM template, so that programs and tests build the DynamoDB table from
// the one definition the cloud stack deploys, and the AsyncAPI document, so
// that tests hold every message to the published contract.
package wsnotify

import _ "embed"

// Template is the content of template.yaml, the AWS SAM template of the whole
// cloud stack. infra/template parses it.
//
//go:embed template.yaml
var Template []byte
