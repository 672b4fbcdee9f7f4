// Package webui serves the web console: the files Vite builds from this directory into dist/
// (`make console`), embedded in the v9 binary. It owns static file serving only: the
// single-page-app fallback to index.html for the console's own routes, caching (hashed assets
// forever, index.html never) and gzip (the build's precompressed NAME.gz when present). It
// never calls the API; the console's code does, from the browser, on the same origin. A binary
// built without the console serves a page that says how to build it.
package webui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the embedded console.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is in the embed pattern; Sub cannot fail
	}
	return newHandler(sub)
}

// assetsPrefix holds Vite's content-hashed files: their names change with their content.
const assetsPrefix = "assets/"

type handler struct {
	files fs.FS
	gz    sync.Map // name -> []byte, gzipped once on first request
}

func newHandler(files fs.FS) *handler { return &handler{files: files} }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	body, err := fs.ReadFile(h.files, name)
	if err != nil {
		// A missing file with an extension is a missing asset (an old hashed name): 404.
		// Anything else is one of the console's routes, which index.html renders.
		if path.Ext(name) != "" && name != "index.html" {
			http.NotFound(w, r)
			return
		}
		name = "index.html"
		if body, err = fs.ReadFile(h.files, name); err != nil {
			notBuilt(w)
			return
		}
	}
	hdr := w.Header()
	if strings.HasPrefix(name, assetsPrefix) {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = http.DetectContentType(body)
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		// frame-src: the Start page shows a started component's answer (from a node's proxy,
		// another origin) in a sandboxed frame.
		hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-src http: https:; frame-ancestors 'none'")
		hdr.Set("Referrer-Policy", "same-origin")
	}
	hdr.Add("Vary", "Accept-Encoding")
	if len(body) > 1024 && compressible(ctype) && acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		body = h.gzipped(name, body)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// gzipped is body compressed: the build's NAME.gz (webui/precompress.mjs) when there is one,
// else compressed here once.
func (h *handler) gzipped(name string, body []byte) []byte {
	if v, ok := h.gz.Load(name); ok {
		return v.([]byte)
	}
	if gz, err := fs.ReadFile(h.files, name+".gz"); err == nil {
		v, _ := h.gz.LoadOrStore(name, gz)
		return v.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	v, _ := h.gz.LoadOrStore(name, buf.Bytes())
	return v.([]byte)
}

func compressible(ctype string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml"} {
		if strings.HasPrefix(ctype, p) {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if strings.TrimSpace(enc) != "gzip" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// notBuiltPage is served when the binary was built without the console.
const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>v9 console not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<h1>The v9 console is not built into this binary</h1>
<p>This node's API works (the <code>v9</code> CLI uses it), but the web console's files were
not present when the binary was compiled.</p>
<p>From a checkout of v9, build the console and then the binary:</p>
<pre><code>make console   # npm ci and vite build into webui/dist (needs Node.js 20+)
make build     # bin/v9 with the console embedded</code></pre>
<p><code>make build</code> alone does both.</p>
</body></html>
`

func notBuilt(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write([]byte(notBuiltPage))
}

// Built reports whether this binary holds a built console, rather than the page that says how
// to build one.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}
