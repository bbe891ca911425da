// Go's net/http: hello-world at /, 4 KiB JSON at /json (the same bytes as payload.py).
package main

import (
	"net/http"
	"os"
)

func main() {
	hello := []byte("Hello, World!")
	js, _ := os.ReadFile(os.Args[2])
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	http.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(js)
	})
	http.ListenAndServe("127.0.0.1:"+os.Args[1], nil)
}
