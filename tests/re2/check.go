// check.go: compiles patterns and matches values with Go's regexp, the
// engine the SSM agent validates every allowedPattern with, the same two
// calls (aws/amazon-ssm-agent at 1c217c89, agent/framework/docparser/
// paramvalidator/allowedregexparamvalidator/allowedregexparamvalidator.go,
// Validate: regexp.Compile(parameter.AllowedPattern) on line 44, a compile
// error fails the command; MatchString(input) on line 52 for a String
// value). Go's regexp follows RE2: no repeat count over 1000, also through
// nesting (regexp/syntax, ErrInvalidRepeatSize).
//
// stdin: a JSON array of {"name", "pattern", "values"}; stdout: a JSON array
// of {"name", "compile_error", "unmatched"}, one per input, in order.
// Run by tests/patterns.rs with `go run`, offline.
package main

import (
	"encoding/json"
	"os"
	"regexp"
)

type check struct {
	Name    string   `json:"name"`
	Pattern string   `json:"pattern"`
	Values  []string `json:"values"`
}

type result struct {
	Name         string   `json:"name"`
	CompileError string   `json:"compile_error"`
	Unmatched    []string `json:"unmatched"`
}

func main() {
	var checks []check
	if err := json.NewDecoder(os.Stdin).Decode(&checks); err != nil {
		os.Stderr.WriteString("check.go: bad input: " + err.Error() + "\n")
		os.Exit(2)
	}
	results := make([]result, 0, len(checks))
	for _, c := range checks {
		r := result{Name: c.Name, Unmatched: []string{}}
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			r.CompileError = err.Error()
		} else {
			for _, v := range c.Values {
				if !re.MatchString(v) {
					r.Unmatched = append(r.Unmatched, v)
				}
			}
		}
		results = append(results, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(2)
	}
}
