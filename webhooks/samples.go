package webhooks

import (
	"embed"
	"io/fs"
)

// sampleFiles are the push bodies the tests parse and replay: every event
// of both providers' documents, as each platform sends them.
//
//go:embed testdata/upay/*.json testdata/hypercard/*.json
var sampleFiles embed.FS

// SampleBodies returns the sample push bodies, named upay/NAME.json and
// hypercard/NAME.json (the files of webhooks/testdata). otpbot demo sends
// them, with fresh identities and times, through the real endpoints.
func SampleBodies() fs.FS {
	sub, err := fs.Sub(sampleFiles, "testdata")
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}
