// Package js is the JavaScript client of wsnotify: wsnotify.js, one
// dependency-free ES module for browsers and Node.js, with its TypeScript
// declarations and the package.json that publishes it to npm as it is. The
// Go package embeds the module so that local mode serves it at /wsnotify.js;
// its tests run the module in Node.js against local mode.
package js

import _ "embed"

// Module is wsnotify.js, the client ES module.
//
//go:embed wsnotify.js
var Module []byte
