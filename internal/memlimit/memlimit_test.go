package memlimit

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string // a part of the error; "" for none
	}{
		{in: "2GiB", want: 2 << 30},
		{in: "1500MB", want: 1_500_000_000},
		{in: "1.5 GiB", want: 3 << 29},
		{in: "2gib", want: 2 << 30},
		{in: "  512MiB ", want: 512 << 20},
		{in: "3221225472", want: 3221225472},
		{in: "67108864B", want: Min},
		{in: "1TB", want: 1e12},
		{in: "off", want: math.MaxInt64},
		{in: "OFF", want: math.MaxInt64},
		{in: "", err: "empty"},
		{in: "-1", err: "must be positive"},
		{in: "-2GiB", err: "must be positive"},
		{in: "0", err: "must be positive"},
		{in: "0GiB", err: "must be positive"},
		{in: "12XB", err: `unknown unit "XB"`},
		{in: "1e9", err: `unknown unit "e9"`},
		{in: "GiB", err: "does not start with a number"},
		{in: "two GiB", err: "does not start with a number"},
		{in: "1..2GiB", err: "does not start with a number"},
		{in: "12", err: "below the smallest limit, 64 MiB"},
		{in: "63MiB", err: "below the smallest limit"},
		{in: "9000000TiB", err: "too large"},
	} {
		got, err := Parse(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("Parse(%q) = %d, want %d", tc.in, got, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("Parse(%q) = %d, want an error with %q", tc.in, got, tc.err)
		case tc.err != "" && (!strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrSize)):
			t.Errorf("Parse(%q): error %q, want one with %q wrapping ErrSize", tc.in, err, tc.err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"2GiB", "1500MB", "-1", "0", "12XB", "off", "1.5 GiB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err == nil && n < Min {
			t.Fatalf("Parse(%q) = %d, below Min", s, n)
		}
	})
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		512: "512 B", 64 << 20: "64 MiB", 3 << 29: "1.5 GiB", 2 << 40: "2 TiB", math.MaxInt64: "off",
	} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}

// On Linux the process's RSS and the machine's memory are known, and the
// default limit is a share of it.
func TestRSSAndDefault(t *testing.T) {
	if _, err := os.Stat("/proc/self/statm"); err != nil {
		t.Skip("no /proc: not Linux")
	}
	rss, err := RSS(0)
	if err != nil || rss == 0 {
		t.Fatalf("RSS(self) = %d, %v", rss, err)
	}
	if byPid, err := RSS(os.Getpid()); err != nil || byPid == 0 {
		t.Errorf("RSS(pid) = %d, %v", byPid, err)
	}
	if _, err := RSS(math.MaxInt32); err == nil {
		t.Error("RSS of a process that does not exist: no error")
	}
	avail, src := Available()
	lim, why := Default()
	if avail <= 0 || src == "" {
		t.Fatalf("Available() = %d, %q", avail, src)
	}
	if lim < Min || lim > avail || !strings.Contains(why, src) {
		t.Errorf("Default() = %d (%q) for %d available", lim, why, avail)
	}
}
