package jepsen

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation on one component name.
type Kind uint8

const (
	Create Kind = iota + 1 // create the component with Value
	Update                 // set the component's value (its spec) to Value
	Delete                 // delete the component
	Read                   // consistent read of the component's value
)

func (k Kind) String() string {
	switch k {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Read:
		return "read"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Input is what a client asked. Every write carries a value no other write uses, so a read
// names the one write it saw.
type Input struct {
	Key   string
	Kind  Kind
	Value string // Create and Update
}

// Result is how an operation ended, as far as the client knows.
type Result uint8

const (
	OK       Result = iota + 1 // applied; Value is what the answer said
	NotFound                   // the component did not exist (a definite answer)
	Exists                     // the component already existed (a definite answer)
	// Unknown: the write may or may not have been applied (a timeout, a lost connection,
	// "may or may not have been applied"). Its return time is the end of the history, so
	// the checker may place it anywhere after its call, including after every other
	// operation, which is the same as never applied.
	Unknown
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case NotFound:
		return "not found"
	case Exists:
		return "exists"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Output is the answer a client got.
type Output struct {
	Result Result
	Value  string // with OK: the value the answer carried (creates, updates and reads)
}

// State is one component name: absent, or present with a value.
type State struct {
	Exists bool
	Value  string
}

// step is the sequential specification of one component name.
func step(s State, in Input, out Output) (bool, State) {
	switch in.Kind {
	case Create:
		switch out.Result {
		case OK:
			return !s.Exists && out.Value == in.Value, State{true, in.Value}
		case Exists:
			return s.Exists, s
		case Unknown:
			if s.Exists {
				return true, s // applied and refused, or not applied: no change either way
			}
			return true, State{true, in.Value}
		}
	case Update:
		switch out.Result {
		case OK:
			return s.Exists && out.Value == in.Value, State{true, in.Value}
		case NotFound:
			return !s.Exists, s
		case Unknown:
			if !s.Exists {
				return true, s
			}
			return true, State{true, in.Value}
		}
	case Delete:
		switch out.Result {
		case OK:
			return s.Exists, State{}
		case NotFound:
			return !s.Exists, s
		case Unknown:
			return true, State{}
		}
	case Read:
		switch out.Result {
		case OK:
			return s.Exists && s.Value == out.Value, s
		case NotFound:
			return !s.Exists, s
		}
	}
	return false, s // an answer the operation can never give
}

// Model is the porcupine model of one component name; histories are checked a name at a
// time, so the state is one State.
func Model() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return State{} },
		Step: func(s, in, out any) (bool, any) {
			return step(s.(State), in.(Input), out.(Output))
		},
		DescribeOperation: func(in, out any) string {
			i, o := in.(Input), out.(Output)
			arg := ""
			if i.Kind == Create || i.Kind == Update {
				arg = i.Value
			}
			ans := o.Result.String()
			if o.Result == OK && o.Value != "" {
				ans = o.Value
			}
			return fmt.Sprintf("%s(%s) -> %s", i.Kind, arg, ans)
		},
		DescribeState: func(s any) string {
			st := s.(State)
			if !st.Exists {
				return "absent"
			}
			return st.Value
		},
	}
}
