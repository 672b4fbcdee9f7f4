package fsm

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func cmdBootstrap(k *statev1.ApiToken) *statev1.Command {
	return &statev1.Command{Time: at(10), Op: &statev1.Command_AclBootstrap{AclBootstrap: &statev1.AclBootstrap{Token: k}}}
}

// TestACLBootstrapOnce: the first bootstrap creates an admin token; every later one fails,
// and the flag survives a snapshot.
func TestACLBootstrapOnce(t *testing.T) {
	st := NewStore()
	if err := st.Apply(1, cmdBootstrap(&statev1.ApiToken{Id: "a1", Role: "viewer", Sha256: sha(1)})); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bootstrap with a viewer token: %v", err)
	}
	if err := st.Apply(2, cmdBootstrap(&statev1.ApiToken{Id: "a1", Role: "admin", Sha256: sha(1)})); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(3, cmdBootstrap(&statev1.ApiToken{Id: "a2", Role: "admin", Sha256: sha(2)})); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second bootstrap: %v", err)
	}
	restored := NewStore()
	if err := restored.Restore(st.State()); err != nil {
		t.Fatal(err)
	}
	if !restored.ACLBootstrapped() {
		t.Fatal("restore lost the bootstrap")
	}
	if k, err := restored.TokenBySHA256(sha(1)); err != nil || k.Id != "a1" || k.CreateTime.GetSeconds() != at(10).Seconds {
		t.Fatalf("token by hash after restore: %v, %v", k, err)
	}
}

// TestTokenRevokeAndTouch: a revoked token stays, marked with the command's time; use times
// only move forward.
func TestTokenRevokeAndTouch(t *testing.T) {
	st := NewStore()
	must := func(i uint64, c *statev1.Command) {
		t.Helper()
		if err := st.Apply(i, c); err != nil {
			t.Fatal(err)
		}
	}
	must(1, cmdCreateToken(&statev1.ApiToken{Id: "k1", Role: "developer", Sha256: sha(1)}))
	if err := st.Apply(2, cmdCreateToken(&statev1.ApiToken{Id: "k2", Role: "root", Sha256: sha(2)})); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown role: %v", err)
	}
	if err := st.Apply(3, cmdCreateToken(&statev1.ApiToken{Id: "k3", Role: "viewer", Sha256: sha(1)})); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("same hash twice: %v", err)
	}
	touch := func(i, sec uint64) {
		must(i, &statev1.Command{Op: &statev1.Command_TouchApiTokens{TouchApiTokens: &statev1.TouchApiTokens{LastUsed: map[string]*timestamppb.Timestamp{"k1": at(sec), "gone": at(sec)}}}})
	}
	touch(4, 50)
	touch(5, 40)
	if k, _ := st.Token("k1"); k.LastUsedTime.GetSeconds() != at(50).Seconds {
		t.Fatalf("last used %v, want 50", k.LastUsedTime)
	}
	must(6, &statev1.Command{Time: at(60), Op: &statev1.Command_RevokeApiToken{RevokeApiToken: &statev1.RevokeApiToken{Id: "k1"}}})
	if k, err := st.TokenBySHA256(sha(1)); err != nil || k.RevokeTime.GetSeconds() != at(60).Seconds {
		t.Fatalf("revoked token: %v, %v", k, err)
	}
}

// TestAuditRecordsActorsBounded: writes with an actor are audited with op and target,
// others are not, failed ones neither; the log keeps the last AuditSize entries; a
// deployment records its actor.
func TestAuditRecordsActorsBounded(t *testing.T) {
	st := NewStore()
	c := cmdCreateComponent(webComponent())
	c.Time, c.Actor = at(5), "token:abc (ci)"
	if err := st.Apply(1, c); err != nil {
		t.Fatal(err)
	}
	d := cmdCreateDeployment(&statev1.Deployment{Id: "d1", ComponentId: webComponent().Id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING})
	d.Actor = "token:abc (ci)"
	if err := st.Apply(2, d); err != nil {
		t.Fatal(err)
	}
	if dep, _ := st.Deployment("d1"); dep.Actor != "token:abc (ci)" {
		t.Fatalf("deployment actor %q", dep.Actor)
	}
	bad := cmdScale(webComponent().Name, 99)
	bad.Actor = "token:abc (ci)"
	_ = st.Apply(3, bad)
	_ = st.Apply(4, cmdScale(webComponent().Name, 1)) // no actor: the nodes' own write
	es := st.Audit(0)
	if len(es) != 2 || es[0].Op != "create_component" || es[0].Target != webComponent().Name || es[0].Time.GetSeconds() != at(5).Seconds || es[1].Op != "create_deployment" {
		t.Fatalf("audit = %v", es)
	}
	for i := range 2*AuditSize + 10 { // past a trim of the log (audit)
		s := cmdScale(webComponent().Name, 1)
		s.Actor = fmt.Sprintf("user:u%d", i)
		if err := st.Apply(uint64(10+i), s); err != nil {
			t.Fatal(err)
		}
		if i == AuditSize+5 {
			if err := checkInvariants(st); err != nil {
				t.Fatal(err)
			}
		}
	}
	es = st.Audit(0)
	if len(es) != AuditSize || es[0].Actor != fmt.Sprintf("user:u%d", AuditSize+10) || es[len(es)-1].Actor != fmt.Sprintf("user:u%d", 2*AuditSize+9) {
		t.Fatalf("audit holds %d entries, first %v, last %v", len(es), es[0], es[len(es)-1])
	}
	if got := st.State().GetAudit(); len(got) != AuditSize || got[0].Index != es[0].Index {
		t.Fatalf("the snapshot holds %d audit entries, first %v", len(got), got[0])
	}
	if got := st.Audit(3); len(got) != 3 || got[2].Index != es[len(es)-1].Index {
		t.Fatalf("audit(3) = %v", got)
	}
	if err := checkInvariants(st); err != nil {
		t.Fatal(err)
	}
}
