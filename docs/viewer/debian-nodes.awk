# apt-cache dumpavail | awk -f debian-nodes.awk > nodes.csv
# One node per package: id,category, the category being its section
# without the archive area (libs, python, doc...).
BEGIN { print "id,category" }
/^Package:/ { p = $2 }
/^Section:/ { s = $2; sub(/.*\//, "", s); if (!(p in seen)) { seen[p] = 1; print p "," s } }
