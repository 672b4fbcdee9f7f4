package githubtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The OAuth side of the fake, as github.com speaks it: the web flow (/login/oauth/authorize
// redirecting back with code and state, /login/oauth/access_token honouring PKCE), the device
// flow (/login/device/code, then access_token with the device_code grant answering
// authorization_pending, slow_down, expired_token), and /user, /user/orgs for the tokens it
// issues. Errors of the token endpoint come with status 200 and an "error" field, as GitHub's.

// DeviceGrantType is the grant_type of a device-flow token request (RFC 8628).
const DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

type oauthState struct {
	signedIn     string // the GitHub user approving web authorizations ("" : nobody)
	deviceLogin  string // approves device codes on their first poll as this user
	deviceTTL    time.Duration
	codes        map[string]*grant
	devices      map[string]*device // by device code
	tokens       map[string]string  // access token -> login
	foreign      map[string]bool    // tokens not issued to the fake's OAuth app
	orgs         map[string][]string
	ids          map[string]int64 // user ids that differ from idOf (renamed accounts, new holders of freed logins)
	nextID       int64
	authorizes   int
	deviceOK     int
	slowDowns    int
	pendingPolls int
}

type grant struct {
	login, clientID, redirect, challenge, method, scope string
	used                                                bool
}

type device struct {
	userCode, login, scope string
	expires, lastPoll      time.Time
	interval               time.Duration
	polled                 bool
}

// OAuthApp returns the client id and secret of the fake's one OAuth app.
func (s *Server) OAuthApp() (clientID, clientSecret string) { return s.ClientID, s.ClientSecret }

// WebURL is the web host (authorize, token, device endpoints): v9's --github-url.
func (s *Server) WebURL() string { return s.URL }

// SignInAs makes login the GitHub user who approves web authorizations ("" : nobody is
// signed in to GitHub, and authorize answers 403).
func (s *Server) SignInAs(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.signedIn = login
}

// ApproveDevicesAs makes login approve every device code at its first poll (which still
// answers authorization_pending, as a user typing the code would). "" approves none.
func (s *Server) ApproveDevicesAs(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.deviceLogin = login
}

// SetDeviceCodeTTL sets the lifetime of device codes issued from now on (default 15 min).
func (s *Server) SetDeviceCodeTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.deviceTTL = d
}

// SetOrgs sets the organizations /user/orgs lists for login.
func (s *Server) SetOrgs(login string, orgs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthInit()
	s.oauth.orgs[login] = orgs
}

// UserToken issues a user access token for login, as if the user had signed in.
func (s *Server) UserToken(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issue(login)
}

// ForeignToken issues a token for login that GitHub's API takes (/user answers login) but
// that the fake's OAuth app did not get: another app's token, or a personal access token.
func (s *Server) ForeignToken(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.issue(login)
	s.oauth.foreign[tok] = true
	return tok
}

// checkToken answers POST /applications/{client_id}/token, as GitHub does: with the app's
// client id and secret as basic auth, it says whether the token in the body was issued to
// that app (200 and the authorization) or not (404).
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request, clientID string) {
	id, secret, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(id+":"+secret), []byte(s.ClientID+":"+s.ClientSecret)) != 1 || clientID != s.ClientID {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || body.AccessToken == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Invalid request: access_token wanted"})
		return
	}
	s.mu.Lock()
	login, ok := s.oauth.tokens[body.AccessToken]
	foreign := s.oauth.foreign[body.AccessToken]
	userID := s.userID(login)
	s.mu.Unlock()
	if !ok || foreign {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": 1, "token": body.AccessToken,
		"app":  map[string]any{"client_id": s.ClientID, "name": "v9", "url": s.URL},
		"user": map[string]any{"login": login, "id": userID},
	})
}

// OAuthCounts reports how many web authorizations were granted, device tokens issued,
// slow_down and authorization_pending answers given.
func (s *Server) OAuthCounts() (authorizes, deviceTokens, slowDowns, pending int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth.authorizes, s.oauth.deviceOK, s.oauth.slowDowns, s.oauth.pendingPolls
}

func (s *Server) oauthInit() {
	o := &s.oauth
	if o.codes == nil {
		o.codes, o.devices, o.tokens, o.orgs = map[string]*grant{}, map[string]*device{}, map[string]string{}, map[string][]string{}
		o.foreign, o.ids = map[string]bool{}, map[string]int64{}
	}
}

// issue mints a token for login; s.mu held.
func (s *Server) issue(login string) string {
	s.oauthInit()
	tok := "gho_" + randHex(16)
	s.oauth.tokens[tok] = login
	return tok
}

// userOfToken returns the login of a user token the request carries.
func (s *Server) userOfToken(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(a, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(a, "token ")
	}
	if !ok || tok == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	login, ok := s.oauth.tokens[tok]
	return login, ok
}

// serveUser answers the API endpoints a user token may call: /user, /user/orgs,
// /user/repos (every repository held, as if the user could push to all), and the GET
// endpoints of a repository (branches, contents, ...).
func (s *Server) serveUser(w http.ResponseWriter, r *http.Request, p, login string) {
	if rest, ok := strings.CutPrefix(p, "repos/"); ok {
		parts := strings.Split(rest, "/")
		if len(parts) < 2 {
			notFound(w)
			return
		}
		s.serveRepo(w, r, parts[0]+"/"+parts[1], parts[2:])
		return
	}
	switch p {
	case "user/repos":
		s.userRepos(w, r)
	case "user":
		s.mu.Lock()
		id := s.userID(login)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"login": login, "id": id, "type": "User"})
	case "user/orgs":
		s.mu.Lock()
		orgs := s.oauth.orgs[login]
		s.mu.Unlock()
		out := []map[string]any{}
		for _, o := range orgs {
			out = append(out, map[string]any{"login": o, "id": idOf(o)})
		}
		writeJSON(w, http.StatusOK, out)
	default:
		notFound(w)
	}
}

// UserID is the numeric id of the account that holds login now.
func (s *Server) UserID(login string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userID(login)
}

// Rename renames the account holding login old to new, as GitHub's account settings do:
// its id, tokens and organizations follow it, and old is free. Whoever signs in as old
// from then on is another account, with another id (someone registered the freed login).
func (s *Server) Rename(old, new string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthInit()
	id := s.userID(old)
	s.oauth.ids[new] = id
	for tok, l := range s.oauth.tokens {
		if l == old {
			s.oauth.tokens[tok] = new
		}
	}
	s.oauth.orgs[new] = s.oauth.orgs[old]
	delete(s.oauth.orgs, old)
	s.oauth.nextID++
	s.oauth.ids[old] = 1<<30 + s.oauth.nextID
}

// userID is UserID; s.mu held.
func (s *Server) userID(login string) int64 {
	if id, ok := s.oauth.ids[login]; ok {
		return id
	}
	return idOf(login)
}

func idOf(login string) int64 {
	sum := sha256.Sum256([]byte(login))
	return int64(sum[0])<<16 | int64(sum[1])<<8 | int64(sum[2]) + 1
}

func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/login/oauth/authorize" && r.Method == http.MethodGet:
		s.authorize(w, r)
	case r.URL.Path == "/login/oauth/access_token" && r.Method == http.MethodPost:
		s.accessToken(w, r)
	case r.URL.Path == "/login/device/code" && r.Method == http.MethodPost:
		s.deviceCode(w, r)
	case r.URL.Path == "/login/device" && r.Method == http.MethodGet:
		fmt.Fprintln(w, "Enter the code shown by your device.")
	default:
		notFound(w)
	}
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthInit()
	if q.Get("client_id") != s.ClientID {
		http.Error(w, "unknown client_id", http.StatusNotFound)
		return
	}
	if s.oauth.signedIn == "" {
		http.Error(w, "nobody is signed in to the fake GitHub", http.StatusForbidden)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" || redirect.Host == "" {
		http.Error(w, "redirect_uri must be an absolute URL", http.StatusBadRequest)
		return
	}
	method := q.Get("code_challenge_method")
	if q.Get("code_challenge") != "" && method == "" {
		method = "plain"
	}
	if method != "" && method != "S256" && method != "plain" {
		http.Error(w, "unsupported code_challenge_method", http.StatusBadRequest)
		return
	}
	code := randHex(10)
	s.oauth.codes[code] = &grant{login: s.oauth.signedIn, clientID: s.ClientID, redirect: redirect.String(),
		challenge: q.Get("code_challenge"), method: method, scope: q.Get("scope")}
	s.oauth.authorizes++
	back := redirect.Query()
	back.Set("code", code)
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// clientCredentials reads the client id and secret from Basic auth or the form.
func clientCredentials(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret := clientCredentials(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthInit()
	if id != s.ClientID {
		oauthError(w, r, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	if r.PostForm.Get("grant_type") == DeviceGrantType {
		s.pollDevice(w, r)
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		oauthError(w, r, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	g, ok := s.oauth.codes[r.PostForm.Get("code")]
	if !ok || g.used {
		oauthError(w, r, "bad_verification_code", "The code passed is incorrect or expired.")
		return
	}
	g.used = true
	if ru := r.PostForm.Get("redirect_uri"); ru != "" && ru != g.redirect {
		oauthError(w, r, "redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		return
	}
	if g.challenge != "" {
		v := r.PostForm.Get("code_verifier")
		want := v
		if g.method == "S256" {
			sum := sha256.Sum256([]byte(v))
			want = base64.RawURLEncoding.EncodeToString(sum[:])
		}
		if v == "" || want != g.challenge {
			oauthError(w, r, "bad_verification_code", "The code_verifier does not match the code_challenge.")
			return
		}
	}
	tokenAnswer(w, r, s.issue(g.login), g.scope)
}

func (s *Server) deviceCode(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthInit()
	if r.PostForm.Get("client_id") != s.ClientID {
		http.Error(w, "unknown client_id", http.StatusNotFound)
		return
	}
	ttl := s.oauth.deviceTTL
	if ttl == 0 {
		ttl = 15 * time.Minute
	}
	dc := randHex(20)
	d := &device{userCode: strings.ToUpper(randHex(2) + "-" + randHex(2)), scope: r.PostForm.Get("scope"),
		expires: time.Now().Add(ttl), interval: time.Second}
	s.oauth.devices[dc] = d
	answer(w, r, map[string]any{
		"device_code": dc, "user_code": d.userCode, "verification_uri": s.URL + "/login/device",
		"expires_in": int(ttl.Round(time.Second) / time.Second), "interval": int(d.interval / time.Second),
	})
}

// pollDevice answers a device-flow token request; s.mu held.
func (s *Server) pollDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := s.oauth.devices[r.PostForm.Get("device_code")]
	if !ok {
		oauthError(w, r, "incorrect_device_code", "The device_code provided is not valid.")
		return
	}
	now := time.Now()
	if now.After(d.expires) {
		oauthError(w, r, "expired_token", "The device_code has expired.")
		return
	}
	// A poll sooner than the interval allows (with a little slack for timers) is told to
	// slow down, and the interval grows by 5 s, as GitHub does.
	if d.polled && now.Sub(d.lastPoll) < d.interval-200*time.Millisecond {
		d.lastPoll = now
		d.interval += 5 * time.Second
		s.oauth.slowDowns++
		oauthError(w, r, "slow_down", "Too many requests have been made in the same timeframe.")
		return
	}
	d.polled, d.lastPoll = true, now
	if d.login == "" {
		d.login = s.oauth.deviceLogin
		s.oauth.pendingPolls++
		oauthError(w, r, "authorization_pending", "The authorization request is still pending.")
		return
	}
	delete(s.oauth.devices, r.PostForm.Get("device_code"))
	s.oauth.deviceOK++
	tokenAnswer(w, r, s.issue(d.login), d.scope)
}

func tokenAnswer(w http.ResponseWriter, r *http.Request, token, scope string) {
	answer(w, r, map[string]any{"access_token": token, "token_type": "bearer", "scope": scope})
}

func oauthError(w http.ResponseWriter, r *http.Request, code, desc string) {
	answer(w, r, map[string]any{"error": code, "error_description": desc,
		"error_uri": "https://docs.github.com/apps/oauth"})
}

// answer writes v as JSON when the client accepts it, else form-encoded (GitHub's default),
// with status 200 even for errors.
func answer(w http.ResponseWriter, r *http.Request, v map[string]any) {
	if strings.Contains(r.Header.Get("Accept"), "json") {
		writeJSON(w, http.StatusOK, v)
		return
	}
	vals := url.Values{}
	for k, x := range v {
		vals.Set(k, fmt.Sprint(x))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(vals.Encode()))
}
