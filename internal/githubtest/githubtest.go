// Package githubtest is a fake GitHub for tests: an httptest server speaking the REST
// endpoints v9 calls through go-github (repository hooks, branches, tarball links and
// downloads, commit statuses, the authenticated user), with repositories held in memory,
// and GitHub's OAuth endpoints (web flow with PKCE, device flow, /user and /user/orgs for
// the user tokens they issue; oauth.go).
// Push makes a new commit and delivers a push webhook signed exactly as github.com signs it.
//
// It is for tests only; the product never imports it.
package githubtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake GitHub. Its zero value is not usable; call New.
type Server struct {
	*httptest.Server
	// Token is the one token the API accepts (as "Bearer" or "token").
	Token string
	// Login is what GET /user answers.
	Login string
	// ClientID and ClientSecret are those of the fake's one OAuth app (oauth.go).
	ClientID, ClientSecret string

	t      testing.TB
	mu     sync.Mutex
	repos  map[string]*Repo
	nextID int64
	// deliveries in the order they were sent
	deliveries []*Delivery
	client     *http.Client
	oauth      oauthState
}

// Repo is one repository held in memory.
type Repo struct {
	FullName      string
	DefaultBranch string
	Branches      map[string]string  // branch -> head sha
	Commits       map[string]*Commit // sha -> commit
	Hooks         map[int64]*Hook
	Statuses      map[string][]Status // sha -> statuses, oldest first
	// RefuseHooks makes hook creation fail as it does for a token without admin rights.
	RefuseHooks bool
}

// Commit is one commit: a whole tree, or a raw tarball that replaces the generated one
// (to serve hostile archives).
type Commit struct {
	SHA     string
	Message string
	Author  string
	Files   map[string]string
	Tarball []byte
	Time    time.Time
}

// Hook is a repository webhook as created through the API.
type Hook struct {
	ID          int64
	URL         string
	ContentType string
	Secret      string
	Events      []string
	Active      bool
}

// Status is a commit status as posted through the API.
type Status struct {
	State       string
	Description string
	Context     string
	TargetURL   string
}

// Delivery is one webhook delivery and what the receiver answered.
type Delivery struct {
	ID     string // X-GitHub-Delivery
	Event  string
	HookID int64
	URL    string
	Body   []byte
	Header http.Header
	Status int // the receiver's status code, 0 when it could not be reached
	Answer string
}

// New starts a fake GitHub, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{Token: "ghp_test_" + randHex(8), Login: "octocat", t: t,
		ClientID: "Iv1." + randHex(8), ClientSecret: randHex(20), repos: map[string]*Repo{}, nextID: 1000,
		client: &http.Client{Timeout: 30 * time.Second}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// APIURL is the base URL to give go-github (WithEnterpriseURLs) or v9's --github-api-url.
func (s *Server) APIURL() string { return s.URL + "/api/v3/" }

// CreateRepo makes an empty repository whose default branch is branch.
func (s *Server) CreateRepo(fullName, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[fullName] = &Repo{FullName: fullName, DefaultBranch: branch, Branches: map[string]string{},
		Commits: map[string]*Commit{}, Hooks: map[int64]*Hook{}, Statuses: map[string][]Status{}}
}

// Commit records a new commit on branch without delivering any webhook and returns its sha.
func (s *Server) Commit(fullName, branch, message string, files map[string]string) string {
	return s.commit(fullName, branch, &Commit{Message: message, Files: files})
}

// CommitTarball is Commit with a raw tar.gz served as the commit's tarball.
func (s *Server) CommitTarball(fullName, branch, message string, tarball []byte) string {
	return s.commit(fullName, branch, &Commit{Message: message, Tarball: tarball})
}

func (s *Server) commit(fullName, branch string, c *Commit) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName)
	c.SHA = randHex(20)
	c.Author = "Mona Lisa"
	c.Time = time.Now().UTC().Truncate(time.Second)
	r.Commits[c.SHA] = c
	r.Branches[branch] = c.SHA
	return c.SHA
}

func (s *Server) repo(fullName string) *Repo {
	r, ok := s.repos[fullName]
	if !ok {
		s.t.Fatalf("githubtest: no repository %q", fullName)
	}
	return r
}

// Push commits files to branch and delivers a push event to every active hook subscribed to
// it. It returns the new sha and the deliveries made.
func (s *Server) Push(fullName, branch, message string, files map[string]string) (string, []*Delivery) {
	sha := s.Commit(fullName, branch, message, files)
	return sha, s.DeliverPush(fullName, branch, sha)
}

// PushTarball is Push with a raw tarball.
func (s *Server) PushTarball(fullName, branch, message string, tarball []byte) (string, []*Delivery) {
	sha := s.CommitTarball(fullName, branch, message, tarball)
	return sha, s.DeliverPush(fullName, branch, sha)
}

// PushPayload is the JSON body of a push event for sha on branch, shaped like GitHub's
// documented payload (the fields v9 and go-github read, and a few more).
func (s *Server) PushPayload(fullName, branch, sha string) []byte {
	s.mu.Lock()
	r := s.repo(fullName)
	c := r.Commits[sha]
	defaultBranch := r.DefaultBranch
	s.mu.Unlock()
	owner, name, _ := strings.Cut(fullName, "/")
	commit := map[string]any{
		"id": sha, "tree_id": randHex(20), "distinct": true, "message": c.Message,
		"timestamp": c.Time.Format(time.RFC3339), "url": s.URL + "/" + fullName + "/commit/" + sha,
		"author":    map[string]any{"name": c.Author, "email": "mona@example.com", "username": s.Login},
		"committer": map[string]any{"name": c.Author, "email": "mona@example.com", "username": s.Login},
		"added":     []string{}, "removed": []string{}, "modified": []string{},
	}
	payload := map[string]any{
		"ref": "refs/heads/" + branch, "before": strings.Repeat("0", 40), "after": sha,
		"created": false, "deleted": false, "forced": false, "base_ref": nil,
		"compare":     s.URL + "/" + fullName + "/compare/" + sha,
		"commits":     []any{commit},
		"head_commit": commit,
		"repository": map[string]any{
			"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name, "full_name": fullName,
			"private": false, "owner": map[string]any{"login": owner, "id": 1, "type": "User"},
			"html_url": s.URL + "/" + fullName, "default_branch": defaultBranch, "master_branch": defaultBranch,
		},
		"pusher": map[string]any{"name": s.Login, "email": "mona@example.com"},
		"sender": map[string]any{"login": s.Login, "id": 1, "type": "User"},
	}
	b, _ := json.Marshal(payload)
	return b
}

// DeliverPush delivers a push event for sha on branch to every subscribed hook.
func (s *Server) DeliverPush(fullName, branch, sha string) []*Delivery {
	body := s.PushPayload(fullName, branch, sha)
	return s.deliverAll(fullName, "push", body)
}

func (s *Server) deliverAll(fullName, event string, body []byte) []*Delivery {
	s.mu.Lock()
	var hooks []*Hook
	for _, h := range s.repo(fullName).Hooks {
		if h.Active && (contains(h.Events, event) || contains(h.Events, "*") || event == "ping") {
			hooks = append(hooks, h)
		}
	}
	s.mu.Unlock()
	sort.Slice(hooks, func(i, j int) bool { return hooks[i].ID < hooks[j].ID })
	var out []*Delivery
	for _, h := range hooks {
		d := s.NewDelivery(h, event, body)
		s.Send(d, h.URL)
		out = append(out, d)
	}
	return out
}

// NewDelivery builds a signed delivery of body to hook h without sending it.
func (s *Server) NewDelivery(h *Hook, event string, body []byte) *Delivery {
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("User-Agent", "GitHub-Hookshot/044aadd")
	hdr.Set("X-GitHub-Event", event)
	hdr.Set("X-GitHub-Hook-ID", strconv.FormatInt(h.ID, 10))
	hdr.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	hdr.Set("X-GitHub-Hook-Installation-Target-ID", "1296269")
	id := uuid()
	hdr.Set("X-GitHub-Delivery", id)
	if h.Secret != "" {
		hdr.Set("X-Hub-Signature", Sign1([]byte(h.Secret), body))
		hdr.Set("X-Hub-Signature-256", Sign256([]byte(h.Secret), body))
	}
	return &Delivery{ID: id, Event: event, HookID: h.ID, URL: h.URL, Body: body, Header: hdr}
}

// Send POSTs a delivery to url and records the answer on d.
func (s *Server) Send(d *Delivery, url string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		d.Answer = err.Error()
		return
	}
	req.Header = d.Header.Clone()
	resp, err := s.client.Do(req)
	defer func() {
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
	}()
	if err != nil {
		d.Status, d.Answer = 0, err.Error()
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	d.Status, d.Answer = resp.StatusCode, string(b)
}

// Redeliver sends d again, with the same delivery id, as GitHub's "Redeliver" button does.
func (s *Server) Redeliver(d *Delivery) *Delivery {
	again := *d
	again.Header = d.Header.Clone()
	s.Send(&again, d.URL)
	return &again
}

// Sign256 is the X-Hub-Signature-256 header value GitHub sends for body.
func Sign256(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Sign1 is the legacy X-Hub-Signature (HMAC-SHA1) header value.
func Sign1(secret, body []byte) string {
	m := hmac.New(sha1.New, secret)
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// Deliveries returns the deliveries sent so far, oldest first (redeliveries included).
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = *d
	}
	return out
}

// RefuseHooks makes hook creation on a repository fail (or work again).
func (s *Server) RefuseHooks(fullName string, refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName).RefuseHooks = refuse
}

// Hooks returns copies of a repository's hooks, by id.
func (s *Server) Hooks(fullName string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Hook
	for _, h := range s.repo(fullName).Hooks {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Statuses returns the statuses posted for sha, oldest first.
func (s *Server) Statuses(fullName, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Status(nil), s.repo(fullName).Statuses[sha]...)
}

// Head returns the sha at the head of branch.
func (s *Server) Head(fullName, branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repo(fullName).Branches[branch]
}

// ---- the REST API ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/login/") {
		s.serveOAuth(w, r)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/api/v3")
	if rest, ok := strings.CutPrefix(p, "/applications/"); ok && r.Method == http.MethodPost {
		if clientID, ok := strings.CutSuffix(rest, "/token"); ok {
			s.checkToken(w, r, clientID)
			return
		}
	}
	if login, ok := s.userOfToken(r); ok && r.Method == http.MethodGet {
		s.serveUser(w, r, strings.Trim(p, "/"), login)
		return
	}
	if strings.HasPrefix(p, "/_codeload/") {
		s.serveCodeload(w, r, strings.TrimPrefix(p, "/_codeload/"))
		return
	}
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "user" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"login": s.Login, "id": 1, "type": "User"})
	case len(parts) >= 3 && parts[0] == "repos":
		s.serveRepo(w, r, parts[1]+"/"+parts[2], parts[3:])
	default:
		notFound(w)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	return a == "Bearer "+s.Token || a == "token "+s.Token
}

func (s *Server) serveRepo(w http.ResponseWriter, r *http.Request, fullName string, rest []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo, ok := s.repos[fullName]
	if !ok {
		notFound(w)
		return
	}
	switch {
	case len(rest) == 1 && rest[0] == "hooks" && r.Method == http.MethodPost && repo.RefuseHooks:
		notFound(w)
	case len(rest) == 1 && rest[0] == "hooks" && r.Method == http.MethodPost:
		var in struct {
			Name   string   `json:"name"`
			Active *bool    `json:"active"`
			Events []string `json:"events"`
			Config struct {
				URL         string `json:"url"`
				ContentType string `json:"content_type"`
				Secret      string `json:"secret"`
				InsecureSSL string `json:"insecure_ssl"`
			} `json:"config"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Config.URL == "" {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
			return
		}
		s.nextID++
		h := &Hook{ID: s.nextID, URL: in.Config.URL, ContentType: in.Config.ContentType, Secret: in.Config.Secret,
			Events: in.Events, Active: in.Active == nil || *in.Active}
		if len(h.Events) == 0 {
			h.Events = []string{"push"}
		}
		repo.Hooks[h.ID] = h
		writeJSON(w, http.StatusCreated, s.hookJSON(fullName, h))
		// GitHub pings a new hook; the answer does not matter to the creator.
		ping := s.pingPayload(fullName, h)
		go func() { s.Send(s.NewDelivery(h, "ping", ping), h.URL) }()
	case len(rest) == 2 && rest[0] == "hooks" && r.Method == http.MethodDelete:
		id, _ := strconv.ParseInt(rest[1], 10, 64)
		if _, ok := repo.Hooks[id]; !ok {
			notFound(w)
			return
		}
		delete(repo.Hooks, id)
		w.WriteHeader(http.StatusNoContent)
	case len(rest) == 2 && rest[0] == "branches" && r.Method == http.MethodGet:
		sha, ok := repo.Branches[rest[1]]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "Branch not found"})
			return
		}
		c := repo.Commits[sha]
		writeJSON(w, http.StatusOK, map[string]any{
			"name": rest[1], "protected": false,
			"commit": map[string]any{
				"sha": sha, "url": s.URL + "/api/v3/repos/" + fullName + "/commits/" + sha,
				"commit": map[string]any{
					"message": c.Message,
					"author":  map[string]any{"name": c.Author, "email": "mona@example.com", "date": c.Time.Format(time.RFC3339)},
				},
				"author": map[string]any{"login": s.Login},
			},
		})
	case len(rest) == 1 && rest[0] == "branches" && r.Method == http.MethodGet:
		names := make([]string, 0, len(repo.Branches))
		for b := range repo.Branches {
			names = append(names, b)
		}
		sort.Strings(names)
		out := []map[string]any{}
		for _, b := range names {
			out = append(out, map[string]any{"name": b, "protected": false,
				"commit": map[string]any{"sha": repo.Branches[b], "url": s.URL + "/api/v3/repos/" + fullName + "/commits/" + repo.Branches[b]}})
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) >= 2 && rest[0] == "contents" && r.Method == http.MethodGet:
		ref := r.URL.Query().Get("ref")
		if ref == "" {
			ref = repo.DefaultBranch
		}
		sha := ref
		if b, ok := repo.Branches[ref]; ok {
			sha = b
		}
		c, ok := repo.Commits[sha]
		name := strings.Join(rest[1:], "/")
		body, found := "", false
		if ok {
			body, found = c.Files[name]
		}
		if !found || strings.HasPrefix(body, "symlink:") {
			notFound(w)
			return
		}
		sum := sha1.Sum([]byte("blob " + strconv.Itoa(len(body)) + "\x00" + body))
		writeJSON(w, http.StatusOK, map[string]any{"type": "file", "encoding": "base64", "size": len(body),
			"name": path.Base(name), "path": name, "sha": hex.EncodeToString(sum[:]),
			"content": base64.StdEncoding.EncodeToString([]byte(body))})
	case len(rest) >= 1 && rest[0] == "tarball" && r.Method == http.MethodGet:
		ref := strings.Join(rest[1:], "/")
		if ref == "" {
			ref = repo.DefaultBranch
		}
		sha := ref
		if b, ok := repo.Branches[ref]; ok {
			sha = b
		}
		if _, ok := repo.Commits[sha]; !ok {
			notFound(w)
			return
		}
		// GitHub answers with a redirect to codeload, whose URL carries a short-lived token.
		w.Header().Set("Location", s.URL+"/_codeload/"+fullName+"/legacy.tar.gz/"+sha+"?token=cl_"+randHex(8))
		w.WriteHeader(http.StatusFound)
	case len(rest) == 2 && rest[0] == "statuses" && r.Method == http.MethodPost:
		var st struct {
			State       string `json:"state"`
			Description string `json:"description"`
			Context     string `json:"context"`
			TargetURL   string `json:"target_url"`
		}
		if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
			return
		}
		switch st.State {
		case "error", "failure", "pending", "success":
		default:
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"field": "state"}}})
			return
		}
		if len(st.Description) > 140 {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"field": "description"}}})
			return
		}
		if _, ok := repo.Commits[rest[1]]; !ok {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "No commit found for SHA: " + rest[1]})
			return
		}
		if st.Context == "" {
			st.Context = "default"
		}
		repo.Statuses[rest[1]] = append(repo.Statuses[rest[1]], Status{State: st.State, Description: st.Description, Context: st.Context, TargetURL: st.TargetURL})
		writeJSON(w, http.StatusCreated, map[string]any{"id": len(repo.Statuses[rest[1]]), "state": st.State,
			"description": st.Description, "context": st.Context, "target_url": st.TargetURL})
	default:
		notFound(w)
	}
}

// userRepos answers GET /user/repos: every repository held, by name, paged as GitHub does
// (page, per_page up to 100, a Link header with rel="next" while more follow).
func (s *Server) userRepos(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if page < 1 {
		page = 1
	}
	if per < 1 || per > 100 {
		per = 30
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []map[string]any{}
	for i := (page - 1) * per; i < len(names) && i < page*per; i++ {
		repo := s.repos[names[i]]
		var pushed time.Time
		for _, c := range repo.Commits {
			if c.Time.After(pushed) {
				pushed = c.Time
			}
		}
		out = append(out, map[string]any{"id": idOf(repo.FullName), "full_name": repo.FullName, "name": path.Base(repo.FullName),
			"private": false, "default_branch": repo.DefaultBranch, "html_url": s.URL + "/" + repo.FullName,
			"pushed_at": pushed.Format(time.RFC3339), "permissions": map[string]any{"admin": true, "push": true, "pull": true}})
	}
	more := page*per < len(names)
	s.mu.Unlock()
	if more {
		w.Header().Set("Link", fmt.Sprintf(`<%s/api/v3/user/repos?page=%d&per_page=%d>; rel="next"`, s.URL, page+1, per))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) hookJSON(fullName string, h *Hook) map[string]any {
	return map[string]any{
		"type": "Repository", "id": h.ID, "name": "web", "active": h.Active, "events": h.Events,
		"config": map[string]any{"content_type": h.ContentType, "insecure_ssl": "0", "url": h.URL},
		"url":    s.URL + "/api/v3/repos/" + fullName + "/hooks/" + strconv.FormatInt(h.ID, 10),
	}
}

func (s *Server) pingPayload(fullName string, h *Hook) []byte {
	b, _ := json.Marshal(map[string]any{
		"zen": "Keep it logically awesome.", "hook_id": h.ID, "hook": s.hookJSON(fullName, h),
		"repository": map[string]any{"full_name": fullName, "name": path.Base(fullName)},
		"sender":     map[string]any{"login": s.Login},
	})
	return b
}

// serveCodeload serves "<owner>/<repo>/legacy.tar.gz/<sha>" as GitHub's codeload does: a
// tar.gz whose entries sit under "<owner>-<repo>-<sha>/", with a pax global header holding
// the commit id.
func (s *Server) serveCodeload(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[2] != "legacy.tar.gz" || !strings.HasPrefix(r.URL.Query().Get("token"), "cl_") {
		notFound(w)
		return
	}
	fullName, sha := parts[0]+"/"+parts[1], parts[3]
	s.mu.Lock()
	repo, ok := s.repos[fullName]
	var c *Commit
	if ok {
		c = repo.Commits[sha]
	}
	s.mu.Unlock()
	if c == nil {
		notFound(w)
		return
	}
	body := c.Tarball
	if body == nil {
		body = Tarball(parts[0]+"-"+parts[1]+"-"+sha, sha, c.Files)
	}
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%s-%s-%s.tar.gz", parts[0], parts[1], sha[:7]))
	w.Write(body)
}

// Tarball builds a GitHub-style tar.gz of files under top/. A file whose content starts
// with "symlink:" becomes a symbolic link to the rest.
func Tarball(top, sha string, files map[string]string) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": sha}})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: 0o775})
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/" + d + "/", Mode: 0o775})
		}
		if target, ok := strings.CutPrefix(files[n], "symlink:"); ok {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: top + "/" + n, Linkname: target, Mode: 0o777})
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + n, Mode: 0o664, Size: int64(len(files[n]))})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// HostileTarball builds a tar.gz holding the directory top/ and one entry named name as
// given (not put under top/, not cleaned): a file with content, or, when link is set, a
// symbolic link to link. Extraction must refuse it where it would land outside.
func HostileTarball(top, name, link string, content []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: 0o755})
	if link != "" {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: link, Mode: 0o777})
	} else {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(content)), Mode: 0o644})
		tw.Write(content)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
