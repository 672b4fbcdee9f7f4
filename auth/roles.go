package auth

import "fmt"

// Role is what a token (or, later, a signed-in user) may do. Higher roles include lower ones.
type Role int

const (
	// RoleNone holds no rights.
	RoleNone Role = iota
	// RoleViewer reads components, deployments, stats and logs.
	RoleViewer
	// RoleDeveloper changes components: create, update, deploy, rollback, pause, resume,
	// scale, delete, link repositories.
	RoleDeveloper
	// RoleAdmin runs the cluster: nodes, drains, membership, and tokens of others.
	RoleAdmin
)

// String is the role's name as tokens store it.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleDeveloper:
		return "developer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "developer":
		return RoleDeveloper, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want viewer, developer or admin", s)
}
