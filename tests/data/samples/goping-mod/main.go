// goping is a tiny HTTP server for xplat's tests: GET /ping answers PONG.
// It uses the standard library only, so it cross-compiles with GOOS/GOARCH alone.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"runtime"
)

func platform() string {
	return fmt.Sprintf("goping %s/%s", runtime.GOOS, runtime.GOARCH)
}

func main() {
	version := flag.Bool("version", false, "print the platform (GOOS/GOARCH) and exit")
	addr := flag.String("addr", ":8080", "address to listen on")
	flag.Parse()
	if *version {
		fmt.Println(platform())
		return
	}
	http.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "PONG")
	})
	log.Printf("%s listening on %s", platform(), *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
