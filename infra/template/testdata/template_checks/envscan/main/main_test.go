package main

import "os"

var _ = os.Getenv("IN_TEST")
