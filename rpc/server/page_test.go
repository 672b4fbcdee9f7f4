package server

import (
	"fmt"
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// List pages by name on the server: a filter on name or repository, an offset, a limit,
// and the number that matched.
func TestPageComponents(t *testing.T) {
	var all []*statev1.Component
	for i := 119; i >= 0; i-- {
		c := &statev1.Component{Name: fmt.Sprintf("c%03d", i)}
		if i%10 == 0 {
			c.Source = &statev1.Source{GithubRepo: "Acme/Site"}
		}
		all = append(all, c)
	}
	names := func(cs []*statev1.Component) string {
		s := ""
		for _, c := range cs {
			s += c.Name + " "
		}
		return s
	}
	for _, tc := range []struct {
		filter        string
		offset, limit uint32
		want          string
		total         uint32
	}{
		{"", 0, 3, "c000 c001 c002 ", 120},
		{"", 118, 50, "c118 c119 ", 120},
		{"", 500, 50, "", 120},
		{"c11", 0, 0, "c110 c111 c112 c113 c114 c115 c116 c117 c118 c119 ", 10},
		{" acme/", 1, 2, "c010 c020 ", 12},
	} {
		got, total := pageComponents(append([]*statev1.Component(nil), all...), tc.filter, tc.offset, tc.limit)
		if names(got) != tc.want || total != tc.total {
			t.Errorf("filter %q offset %d limit %d: %q (total %d), want %q (%d)", tc.filter, tc.offset, tc.limit, names(got), total, tc.want, tc.total)
		}
	}
}
