package ghub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-github/v60/github"

	"github.com/velocity9/v9/deploy"
)

// ErrFetch: the commit's tarball could not be downloaded.
var ErrFetch = errors.New("fetch archive")

// FetchOptions bound a tarball download and its extraction.
type FetchOptions struct {
	// Limits bound the extracted tree (files, content bytes); zero fields take deploy.DefaultLimits.
	Limits deploy.Limits
	// MaxDownloadBytes bounds the compressed download (default Limits.MaxBytes).
	MaxDownloadBytes int64
	// HTTP downloads the archive (default http.DefaultClient). It should not follow
	// redirects to other hosts with credentials; FetchTarball never sends any to them.
	HTTP *http.Client
	// Token is sent with the download only when the archive lives on the API's own host.
	Token string
}

// FetchTarball downloads the tarball of repo ("owner/repo") at ref through go-github
// (GetArchiveLink, then a streaming GET of the link) and extracts it into dest with its
// top-level "owner-repo-sha/" directory stripped. Nothing is written outside dest; an
// archive over the limits, with ".." names, absolute paths or escaping links fails with an
// error matching deploy.ErrUnsafeArchive or deploy.ErrArchiveTooLarge.
func FetchTarball(ctx context.Context, gh *github.Client, repo, ref, dest string, o FetchOptions) error {
	owner, name, err := SplitRepo(repo)
	if err != nil {
		return err
	}
	link, _, err := gh.Repositories.GetArchiveLink(ctx, owner, name, github.Tarball, &github.RepositoryContentGetOptions{Ref: ref}, 3)
	if err != nil {
		return fmt.Errorf("%w: archive link of %s@%s: %v", ErrFetch, repo, ref, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFetch, err)
	}
	if o.Token != "" && sameHost(link, gh.BaseURL) {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	hc := o.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: download %s@%s: %v", ErrFetch, repo, ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: download %s@%s: %s", ErrFetch, repo, ref, resp.Status)
	}
	lim := o.Limits
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = deploy.DefaultLimits.MaxBytes
	}
	maxDownload := o.MaxDownloadBytes
	if maxDownload <= 0 {
		maxDownload = lim.MaxBytes
	}
	body := &limitedReader{r: resp.Body, n: maxDownload}
	if err := deploy.UnpackStripTop(body, dest, lim); err != nil {
		if body.over {
			return fmt.Errorf("%w: the download is larger than %d bytes", deploy.ErrArchiveTooLarge, maxDownload)
		}
		return err
	}
	return nil
}

func sameHost(a, b *url.URL) bool {
	return b != nil && a.Scheme == b.Scheme && a.Host == b.Host
}

// limitedReader fails once more than n bytes are read, and says so.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		l.over = true
		return 0, deploy.ErrArchiveTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	if l.n < 0 {
		l.over = true
		return k, deploy.ErrArchiveTooLarge
	}
	return k, err
}
