// Command ggcr-registry serves go-containerregistry's registry (pkg/registry, the one crane and ko
// test against) with its OCI 1.1 referrers API switched on. slipway's tests use it as the registry
// that lists referrers through the API: distribution 2.8 and v3 have no referrers API, and
// `crane registry serve` does not enable it.
//
// With --oci-subject it also answers a manifest PUT that carries a `subject` with the `OCI-Subject`
// header, which distribution spec v1.1 requires of a registry that indexes referrers and which
// pkg/registry (v0.22.1) leaves out. That is how a client learns it need not write the fallback tag.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Manifests above this size are passed through unread (registries cap manifests at 4 MiB anyway).
const maxManifestBytes = 4 << 20

func main() {
	address := flag.String("address", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	ociSubject := flag.Bool("oci-subject", false, "answer manifest PUTs that carry a subject with OCI-Subject")
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	var handler http.Handler = registry.New(registry.WithReferrersSupport(true))
	if *ociSubject {
		handler = withOCISubject(handler)
	}
	// The test harness reads the chosen port from this line.
	fmt.Fprintf(os.Stdout, "listening on %s\n", listener.Addr())
	log.Fatal(http.Serve(listener, handler))
}

func withOCISubject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") || r.ContentLength > maxManifestBytes {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var manifest struct {
			Subject *struct {
				Digest string `json:"digest"`
			} `json:"subject"`
		}
		if json.Unmarshal(body, &manifest) == nil && manifest.Subject != nil && manifest.Subject.Digest != "" {
			next.ServeHTTP(&subjectWriter{ResponseWriter: w, subject: manifest.Subject.Digest}, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// subjectWriter adds OCI-Subject to a successful (201) answer.
type subjectWriter struct {
	http.ResponseWriter
	subject string
}

func (s *subjectWriter) WriteHeader(status int) {
	if status == http.StatusCreated {
		s.Header().Set("OCI-Subject", s.subject)
	}
	s.ResponseWriter.WriteHeader(status)
}
