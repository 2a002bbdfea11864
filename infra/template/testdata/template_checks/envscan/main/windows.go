//go:build windows

package main

import "os"

var _ = os.Getenv("WINDOWS_ONLY")
