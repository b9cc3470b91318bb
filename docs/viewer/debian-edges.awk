# apt-cache dumpavail | awk -f debian-edges.awk > edges.csv
# One edge per dependency: source,target, the first alternative of each
# Depends entry, without its version and architecture qualifiers.
BEGIN { print "source,target" }
/^Package:/ { p = $2 }
/^Depends:/ {
	sub(/^Depends: /, "")
	n = split($0, a, /, */)
	for (i = 1; i <= n; i++) {
		d = a[i]; sub(/ *[|(].*/, "", d); sub(/:any$/, "", d)
		if (d != "" && !((p, d) in seen)) { seen[p, d] = 1; print p "," d }
	}
}
