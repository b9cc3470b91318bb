package main

import "testing"

// TestCatalogueScript runs testdata/catalogue.txt against an in-process
// engine: cairn graph list and show, and cairn query find across graphs.
func TestCatalogueScript(t *testing.T) {
	eng := openEngineNoSnapshots(t)
	runScript(t, "catalogue", eng.ClientURL())
}
