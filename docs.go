package wsnotify

import _ "embed"

// AsyncAPI is the content of docs/asyncapi.yaml, the AsyncAPI description of
// the WebSocket API. infra/asyncapi parses it and checks messages against it.
//
//go:embed docs/asyncapi.yaml
var AsyncAPI []byte

// OpenAPI is the content of docs/openapi.yaml, the OpenAPI description of
// the publish API. infra/openapi parses it and checks answers against it.
//
//go:embed docs/openapi.yaml
var OpenAPI []byte
