package ghub

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/velocity9/v9/internal/githubtest"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// xorSealer stands in for the keyring: it "seals" by flipping bits and refuses to open a
// ciphertext whose first byte was changed.
type xorSealer struct{}

func (xorSealer) SealSecret(_ context.Context, _, _ string, v []byte) (string, []byte, []byte, error) {
	ct := append([]byte{0xAA}, v...)
	for i := 1; i < len(ct); i++ {
		ct[i] ^= 0x5A
	}
	return "k1", []byte("nonce"), ct, nil
}

func (xorSealer) OpenSecret(_ context.Context, s *statev1.Secret) ([]byte, error) {
	if len(s.Ciphertext) == 0 || s.Ciphertext[0] != 0xAA || s.Name != webhookSecretName {
		return nil, errors.New("does not authenticate")
	}
	out := append([]byte(nil), s.Ciphertext[1:]...)
	for i := range out {
		out[i] ^= 0x5A
	}
	return out, nil
}

// A sealed webhook secret verifies deliveries once opened; a tampered one verifies none
// (401), never a delivery signed with garbage.
func TestSealedWebhookSecret(t *testing.T) {
	s := New(Options{Sealer: xorSealer{}})
	keyID, nonce, ct, _ := xorSealer{}.SealSecret(context.Background(), "c1", webhookSecretName, []byte("s3cret"))
	link := func(ct []byte) []*statev1.GithubLink {
		return []*statev1.GithubLink{{ComponentId: "c1", Repo: "octo/hello", Branch: "main", HookId: 7,
			Secret: append([]byte(nil), ct...), SecretKeyId: keyID, SecretNonce: nonce}}
	}
	body := []byte(`{"zen":"z","repository":{"full_name":"octo/hello"}}`)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", "ping")
	h.Set("X-GitHub-Hook-ID", "7")
	h.Set("X-Hub-Signature-256", githubtest.Sign256([]byte("s3cret"), body))
	if v := verifyDelivery(s.openLinks(context.Background(), link(ct)), h, body); v.code != 0 {
		t.Fatalf("sealed secret: %d %s", v.code, v.msg)
	}
	bad := append([]byte(nil), ct...)
	bad[0] ^= 1
	if v := verifyDelivery(s.openLinks(context.Background(), link(bad)), h, body); v.code != http.StatusUnauthorized {
		t.Fatalf("tampered secret: %d %s", v.code, v.msg)
	}
	// The signature made with the ciphertext itself does not pass either.
	h.Set("X-Hub-Signature-256", githubtest.Sign256(bad, body))
	if v := verifyDelivery(s.openLinks(context.Background(), link(bad)), h, body); v.code != http.StatusUnauthorized {
		t.Fatalf("signed with the ciphertext: %d %s", v.code, v.msg)
	}
}
