// Package access decides who may do what, and where: roles grant actions,
// and a user's areas bound every action to their part of the county. It is
// pure logic; the API asks it on every request.
package access

import (
	"fmt"
	"slices"
	"strings"

	"dalaba/protocol"
)

// Roles.
const (
	Admin      = "admin"      // users, terminals, keys, settings
	Officer    = "officer"    // county emergency officer: alerts and notices anywhere in scope, cancel
	Approver   = "approver"   // approves or rejects pending alerts
	Cadre      = "cadre"      // village cadre: daily notices to their villages
	Technician = "technician" // terminals: enroll, volume, test tone, faults
	Viewer     = "viewer"     // read only
)

// Roles lists every role, in the order the console shows them.
var Roles = []string{Admin, Officer, Approver, Cadre, Technician, Viewer}

// ValidRole reports whether r is a role.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// Action is something a user asks to do.
type Action string

// Actions.
const (
	View            Action = "view"             // areas, terminals, alerts, deliveries in scope
	ManageUsers     Action = "users.manage"     // users, roles, scopes, others' tokens
	ManageSettings  Action = "settings.manage"  // approval policy, drill roles, areas
	ManageKeys      Action = "keys.manage"      // rotate issuing keys
	ViewAudit       Action = "audit.view"       // read and verify the audit log
	ManageTerminals Action = "terminals.manage" // enroll, approve, revoke, configure, test tone
	UploadMedia     Action = "media.upload"
	SendEmergency   Action = "alert.emergency" // create emergency alerts
	SendDaily       Action = "alert.daily"     // create daily notices
	CancelAlert     Action = "alert.cancel"
	ApproveAlert    Action = "alert.approve"
	ManagePrograms  Action = "program.manage" // scheduled programs in scope (cadres: routine and daily only)
)

var grants = map[string][]Action{
	Admin:      {View, ManageUsers, ManageSettings, ManageKeys, ViewAudit, ManageTerminals},
	Officer:    {View, UploadMedia, SendEmergency, SendDaily, CancelAlert, ManagePrograms},
	Approver:   {View, ApproveAlert},
	Cadre:      {View, UploadMedia, SendDaily, CancelAlert, ManagePrograms},
	Technician: {View, ManageTerminals},
	Viewer:     {View},
}

// Can reports whether any of roles grants a.
func Can(roles []string, a Action) bool {
	for _, r := range roles {
		if slices.Contains(grants[r], a) {
			return true
		}
	}
	return false
}

// Scope is the set of areas a user may reach. A county-wide user holds the
// county code. An empty scope reaches nothing.
type Scope []string

// Covers reports whether area lies inside the scope.
func (s Scope) Covers(area string) bool {
	for _, a := range s {
		if protocol.AreaContains(a, area) {
			return true
		}
	}
	return false
}

// Overlaps reports whether area and the scope share any place: area lies
// inside the scope, or a scope area lies inside it. A cadre of one village
// overlaps the county; that is enough to see an alert, not to target it.
func (s Scope) Overlaps(area string) bool {
	for _, a := range s {
		if protocol.AreaContains(a, area) || protocol.AreaContains(area, a) {
			return true
		}
	}
	return false
}

// CheckTargets returns an error naming the first target area outside the
// scope. Terminal targets are checked by the caller, who knows their areas.
func (s Scope) CheckTargets(areas []string) error {
	for _, a := range areas {
		if !s.Covers(a) {
			return fmt.Errorf("area %s is outside your areas (%s)", a, strings.Join(s, ", "))
		}
	}
	return nil
}

// Policy is what a county configures about alerts.
type Policy struct {
	// Approval says which alerts a second person must approve, by class:
	// the levels (1..4; 0 for a daily notice without level) that need it.
	Approval map[string][]int `json:"approval"`
	// DrillRoles may send drills (message kinds 3 to 5).
	DrillRoles []string `json:"drill_roles"`
	// IssueNowLevel1 lets an officer send a level 1 emergency at once,
	// with review afterwards, instead of waiting for approval.
	IssueNowLevel1 bool `json:"issue_now_level1"`
	// DrillPriority places drills (message kinds 3 to 5) on the terminals'
	// priority ladder (protocol.Priority*); 0 ranks a drill like the real
	// alert of its class and level.
	DrillPriority int `json:"drill_priority,omitempty"`
}

// DefaultPolicy: every emergency alert needs a second person; officers
// (and admins, for tests of the system) may run drills; no issue-now.
func DefaultPolicy() Policy {
	return Policy{
		Approval:   map[string][]int{protocol.ClassEmergency: {1, 2, 3, 4}},
		DrillRoles: []string{Officer},
	}
}

// NeedsApproval reports whether an alert of this class and level must wait
// for an approver.
func (p Policy) NeedsApproval(class string, level int) bool {
	return slices.Contains(p.Approval[class], level)
}

// MaySendDrill reports whether roles may send drills.
func (p Policy) MaySendDrill(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(p.DrillRoles, r) {
			return true
		}
	}
	return false
}

// Validate checks a policy; errors name the key.
func (p Policy) Validate() error {
	for class, levels := range p.Approval {
		if class != protocol.ClassEmergency && class != protocol.ClassDaily {
			return fmt.Errorf("approval: class %q must be emergency or daily", class)
		}
		for _, l := range levels {
			if l < 0 || l > 4 {
				return fmt.Errorf("approval.%s: level %d must be 0..4", class, l)
			}
		}
	}
	if p.DrillPriority < 0 || p.DrillPriority > protocol.PriorityMax {
		return fmt.Errorf("drill_priority: %d must be 0..%d (e.g. %d below live speech, %d like a level 4 emergency)",
			p.DrillPriority, protocol.PriorityMax, protocol.PriorityDaily, protocol.PriorityEmergency4)
	}
	for _, r := range p.DrillRoles {
		if !ValidRole(r) {
			return fmt.Errorf("drill_roles: %q is not a role (%s)", r, strings.Join(Roles, ", "))
		}
	}
	return nil
}
