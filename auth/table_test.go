package auth

import (
	"fmt"
	"strings"
	"testing"

	_ "connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Procedures of every service a node serves, read from the generated descriptors: v9's
// own (rpc/gen, registered by the imports of table.go), gRPC health and reflection.
func servedProcedures() []string {
	var out []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		pkg := string(fd.Package())
		if !strings.HasPrefix(pkg, "v9.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				out = append(out, fmt.Sprintf("/%s/%s", sd.FullName(), sd.Methods().Get(j).Name()))
			}
		}
		return true
	})
	return append(out,
		"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
}

// TestTableCoversEveryProcedure fails when a procedure of the generated services has no
// entry in Procedures (it would be refused to everyone), or an entry names no procedure.
func TestTableCoversEveryProcedure(t *testing.T) {
	served := servedProcedures()
	if len(served) < 30 {
		t.Fatalf("found only %d procedures in the descriptors: %v", len(served), served)
	}
	seen := map[string]bool{}
	for _, p := range served {
		seen[p] = true
		if _, ok := Procedures[p]; !ok {
			t.Errorf("%s is missing from auth.Procedures: give it a role (or Node, or Open)", p)
		}
	}
	for p, a := range Procedures {
		if !seen[p] {
			t.Errorf("auth.Procedures names %s, which no service has", p)
		}
		if !a.Open && !a.Node && a.Role == RoleNone {
			t.Errorf("%s needs nothing but is not marked Open", p)
		}
	}
}
