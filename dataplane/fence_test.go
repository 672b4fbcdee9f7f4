package dataplane

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestMemberAddrs: every member's API, Raft and proxy address is fenced, names resolved,
// duplicates and unparsable addresses dropped.
func TestMemberAddrs(t *testing.T) {
	got := MemberAddrs(context.Background(), []*statev1.Node{
		{Id: "n1", ApiAddr: "10.0.0.1:7900", RaftAddr: "10.0.0.1:7910", ProxyAddr: "10.0.0.1:8080"},
		{Id: "n2", ApiAddr: "localhost:7900", RaftAddr: "bad", ProxyAddr: ""},
		{Id: "n3", ApiAddr: "10.0.0.1:7900"},
	})
	want := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:7900"), netip.MustParseAddrPort("10.0.0.1:7910"),
		netip.MustParseAddrPort("10.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:7900"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("MemberAddrs = %v, want %v", got, want)
	}
}
