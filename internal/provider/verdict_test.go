package provider

import (
	"errors"
	"fmt"
	"testing"
)

func TestInterpret(t *testing.T) {
	for answer, want := range map[string]Verdict{
		"03AGdBq2-SIM-1":           Solved,
		"ERRORS":                   Solved, // not an error code (see IsErrorCode)
		"CAPCHA_NOT_READY":         NotReady,
		" CAPCHA_NOT_READY ":       NotReady,
		"ERROR_NO_SLOT_AVAILABLE":  Waiting,
		"MAX_USER_TURN":            Waiting,
		"ERROR: 1001":              Waiting,
		"ERROR_CAPTCHA_UNSOLVABLE": Failed,
		"ERROR_ZERO_BALANCE":       Failed,
		"TOO_MANY_BAD_IMAGES":      Failed,
	} {
		if got := Interpret(answer); got != want {
			t.Errorf("Interpret(%q) = %v, want %v", answer, got, want)
		}
	}
}

func TestResultAnswer(t *testing.T) {
	for _, c := range []struct {
		r    Result
		want string
	}{
		{Result{Ready: true, Solution: "abc"}, "abc"},
		{Result{Err: &Error{Code: CodeUnsolvable}}, CodeUnsolvable},
		{Result{}, CodeNotReady},
	} {
		if got := c.r.Answer(); got != c.want {
			t.Errorf("%+v.Answer() = %q, want %q", c.r, got, c.want)
		}
	}
	if !IsBatchMismatch(fmt.Errorf("x: %w", &Error{Code: CodeBatchMismatch})) || IsBatchMismatch(errors.New("x")) {
		t.Fatal("IsBatchMismatch")
	}
}
