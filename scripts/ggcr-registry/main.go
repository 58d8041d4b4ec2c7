// Command ggcr-registry serves go-containerregistry's registry (pkg/registry, the one crane and ko
// test against) with its OCI 1.1 referrers API switched on. slipway's tests use it as the registry
// that lists referrers through the API: distribution 2.8 and v3 have no referrers API, and
// `crane registry serve` does not enable it.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	address := flag.String("address", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	// The test harness reads the chosen port from this line.
	fmt.Fprintf(os.Stdout, "listening on %s\n", listener.Addr())
	log.Fatal(http.Serve(listener, registry.New(registry.WithReferrersSupport(true))))
}
