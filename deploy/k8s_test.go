package deploy

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// variants are the directories of k8s/, each applied as a whole.
func variants(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("k8s/*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, filepath.ToSlash(d))
		}
	}
	if len(out) == 0 {
		t.Fatal("no directories in k8s/")
	}
	return out
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerImage is what the Dockerfile builds, checked by TestDockerfile.
func dockerImage(t *testing.T) image {
	t.Helper()
	img, errs := checkDockerfile(readDockerfile(t), goVersion(t))
	if len(errs) > 0 || img.binary == "" {
		t.Fatalf("the Dockerfile (see TestDockerfile): %v", errs)
	}
	return img
}

// loadVariant reads and decodes the variant in dir.
func loadVariant(t *testing.T, dir string) (*variant, map[string][]byte) {
	t.Helper()
	files, err := readVariant(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeVariant(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	return v, files
}

// TestManifests decodes every manifest strictly into the Kubernetes API
// types and checks the references between them, against the image the
// Dockerfile builds and the Secrets deploy/README.md documents.
func TestManifests(t *testing.T) {
	img, doc := dockerImage(t), readme(t)
	for _, dir := range variants(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			v, _ := loadVariant(t, dir)
			for _, err := range v.check(img, doc) {
				t.Error(err)
			}
			if !strings.Contains(doc, dir) {
				t.Errorf("deploy/README.md does not mention %s", dir)
			}
		})
	}
}

// TestManifestsStrict: the decoder refuses what kubectl would refuse or
// silently drop.
func TestManifestsStrict(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"misspelt field", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec:\n  replica: 3\n", "unknown field"},
		{"field twice", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: None\n  clusterIP: None\n", "already set"},
		{"wrong type", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec:\n  replicas: three\n", "replicas"},
		{"bad quantity", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          resources: {limits: {memory: 2 Gi}}\n", "quantities"},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n", "not one the tests know"},
		{"old version", "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n", "not one the tests know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDocuments("test.yaml", []byte("# a comment\n---\n"+tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that mentions %q", err, tc.want)
			}
		})
	}
	objs, err := decodeDocuments("test.yaml", []byte("---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"))
	if err != nil || len(objs) != 1 || objs[0].where != "test.yaml#2" {
		t.Errorf("%+v, %v: want the ConfigMap, document 2", objs, err)
	}
}

// TestManifestChecks breaks the manifests one way at a time: each break
// must be found, so that TestManifests can fail.
func TestManifestChecks(t *testing.T) {
	const dir, ext = "k8s/embedded", "k8s/external-nats"
	img, doc := dockerImage(t), readme(t)
	const sts, svc, pdb, np = dir + "/statefulset.yaml", dir + "/services.yaml", dir + "/pdb.yaml", dir + "/networkpolicy.yaml"
	const extCairn, extNATS = ext + "/cairn.yaml", ext + "/nats.yaml"
	files := map[string]map[string][]byte{}
	for _, d := range []string{dir, ext} {
		_, files[d] = loadVariant(t, d)
	}
	for _, tc := range []struct{ name, file, old, new, want string }{
		{"service selector", svc, "spec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: cairn",
			"spec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: cairn-engine", "selects the pods of 0"},
		{"target port", svc, "targetPort: nats-cluster", "targetPort: nats-clustr", "target port nats-clustr"},
		{"service name", sts, "serviceName: cairn-headless", "serviceName: cairn-headles", "names no Service"},
		{"not ready addresses", svc, "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "not-ready"},
		{"ordered start", sts, "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", "Parallel"},
		{"secret path", sts, "--tls-cert=/etc/cairn/tls/tls.crt", "--tls-cert=/etc/cairn/tls/tls.cert", `no item with path "tls.cert"`},
		{"unmounted path", sts, "--auth=/etc/cairn/auth/users.json", "--auth=/etc/cairn/users.json", "on no volume"},
		{"mount name", sts, "            - name: signing\n              mountPath", "            - name: signin\n              mountPath", "names no volume"},
		{"unused volume", sts, "            - name: tmp\n              mountPath: /tmp\n", "", "volume tmp is mounted by no container"},
		{"root", sts, "        runAsNonRoot: true\n        runAsUser: 65532", "        runAsNonRoot: false\n        runAsUser: 65532", "runAsNonRoot"},
		{"root user", sts, "            runAsUser: 65532\n            runAsGroup", "            runAsUser: 0\n            runAsGroup", "runAsUser is root"},
		{"writable root", sts, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"no limits", sts, "            limits:\n              cpu: \"2\"\n              memory: 4Gi\n", "", "a request and a limit"},
		{"request above limit", sts, "memory: 2Gi", "memory: 8Gi", "above its limit"},
		{"replicas", sts, "replicas: 3", "replicas: 2", "replicas 2, want 3"},
		{"route missing", sts, ",nats-route://cairn-2.cairn-headless:6222", "", "routes name"},
		{"route port", sts, "cairn-1.cairn-headless:6222", "cairn-1.cairn-headless:4222", "nats-route://HOST:6222"},
		{"env typo", sts, "--name=$(POD_NAME)", "--name=$(POD_NAM)", "does not define"},
		{"undocumented secret", sts, "secretName: cairn-signing", "secretName: cairn-signer", "neither in the manifests nor documented"},
		{"world-readable secret", sts, "defaultMode: 0440", "defaultMode: 0444", "others no access"},
		{"secret mount writable", sts, "              mountPath: /etc/cairn/tls\n              readOnly: true", "              mountPath: /etc/cairn/tls", "readOnly"},
		{"pdb quorum", pdb, "maxUnavailable: 1", "maxUnavailable: 2", "quorum"},
		{"no pdb", pdb, "app.kubernetes.io/instance: cairn\n", "app.kubernetes.io/instance: other\n", "no PodDisruptionBudget"},
		{"no fsync", sts, "            - --sync-always\n", "", "--sync-always"},
		{"no auth", sts, "            - --auth=/etc/cairn/auth/users.json\n", "", "give --auth"},
		{"readiness path", sts, "path: /readyz\n              port: metrics\n            periodSeconds: 10", "path: /healthz\n              port: metrics\n            periodSeconds: 10", `readinessProbe: path "/healthz", want /readyz`},
		{"startup path", sts, "path: /readyz\n              port: metrics\n            # Up to", "path: /metrics\n              port: metrics\n            # Up to", `startupProbe: path "/metrics", want /readyz`},
		{"liveness path", sts, "path: /healthz", "path: /readyz", `livenessProbe: path "/readyz", want /healthz`},
		{"probe port", sts, "port: metrics\n            periodSeconds: 10", "port: client\n            periodSeconds: 10", "readinessProbe: port client, want the container port metrics"},
		{"probe scheme", sts, "path: /healthz\n", "path: /healthz\n              scheme: HTTPS\n", "plain HTTP"},
		{"startup budget", sts, "failureThreshold: 360", "failureThreshold: 60", "startupProbe: 5m0s of failures"},
		{"liveness budget", sts, "failureThreshold: 6\n", "failureThreshold: 2\n", "livenessProbe: 40s of failures"},
		{"metrics port", sts, "--metrics-listen=0.0.0.0:9464", "--metrics-listen=0.0.0.0:9465", "container port named metrics"},
		{"metrics loopback", sts, "--metrics-listen=0.0.0.0:9464", "--metrics-listen=127.0.0.1:9464", "not the pod's loopback"},
		{"no metrics listen", sts, "            - --metrics-listen=0.0.0.0:9464\n", "", "no --metrics-listen"},
		{"scrape annotation", sts, `prometheus.io/scrape: "true"`, `prometheus.io/scrape: "false"`, "pod annotation prometheus.io/scrape"},
		{"scrape port", sts, `prometheus.io/port: "9464"`, `prometheus.io/port: "4222"`, "pod annotation prometheus.io/port"},
		{"scrape path", sts, "prometheus.io/path: /metrics", "prometheus.io/path: /metric", "pod annotation prometheus.io/path"},
		{"metrics service", svc, "    - name: metrics\n      port: 9464\n      targetPort: metrics\n", "", "no Service exposes the metrics port"},
		{"metrics service ready only", svc, "      targetPort: client\n", "      targetPort: client\n    - name: metrics\n      port: 9464\n      targetPort: metrics\n", "lists ready pods only"},
		{"metrics open", np, "    - from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring\n          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: prometheus\n      ports:", "    - ports:", "admits every pod to the metrics port"},
		{"metrics shut", np, "        - port: metrics\n", "        - port: client\n", "no ingress rule admits Prometheus"},
		{"metrics any namespace", np, "        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring\n          podSelector:", "        - podSelector:", "no ingress rule admits Prometheus"},
		{"metrics namespace undocumented", np, "kubernetes.io/metadata.name: monitoring", "kubernetes.io/metadata.name: observability", "kubernetes.io/metadata.name: observability is not documented"},
		{"listen port", sts, "--nats-listen=0.0.0.0:4222", "--nats-listen=0.0.0.0:4223", "container port named client"},
		{"unexposed port", sts, "containerPort: 7222", "containerPort: 7223", "EXPOSEs"},
		{"advertise", sts, "--cluster-advertise=$(POD_NAME).cairn-headless:7222", "--cluster-advertise=$(POD_NAME):7222", "--cluster-advertise"},
		{"space form", sts, "--replicas=3", "--replicas 3", "--name=value"},
		{"policy port", np, "port: nats-cluster", "port: nats-clustr", "ingress port"},
		{"grace", sts, "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30", "drain timeout"},
		{"data on emptyDir", sts, "            - name: data\n              mountPath: /data", "            - name: tmp\n              mountPath: /data", "volume claim template"},
		{"token", sts, "automountServiceAccountToken: false", "automountServiceAccountToken: true", "automountServiceAccountToken"},
		{"nats service", extCairn, "--nats=tls://nats:4222", "--nats=tls://natz:4222", "no Service natz"},
		{"nats port", extCairn, "--nats=tls://nats:4222", "--nats=tls://nats:4223", "has no port 4223"},
		{"nats plaintext", extCairn, "--nats=tls://nats:4222", "--nats=nats://nats:4222", "want tls://"},
		{"nats login", extCairn, "            - --nkey=/etc/cairn/nats/cairn.nk\n", "", "without a login"},
		{"embedded flag", extCairn, "            - --replicas=3\n", "            - --replicas=3\n            - --sync-always\n", "refuses it with --nats"},
		{"no signing key", extCairn, "            - --signing-key=/etc/cairn/signing/signing.nk\n", "", "no --signing-key"},
		{"external probe port", extCairn, "              port: metrics\n            periodSeconds: 10", "              port: metric\n            periodSeconds: 10", "port metric is not one"},
		{"external metrics policy", extCairn, "        - port: metrics\n", "        - port: remote\n", "no ingress rule admits Prometheus"},
		{"external scrape annotation", extCairn, "prometheus.io/path: /metrics", "prometheus.io/path: /", "pod annotation prometheus.io/path"},
		{"nats user", extNATS, "        runAsUser: 1000\n", "        runAsUser: 0\n", "non-root user"},
		{"configmap key", extNATS, "              - key: nats.conf\n", "              - key: nats.cfg\n", "has no key nats.cfg"},
		{"config path", extNATS, "--config=/etc/nats/nats.conf", "--config=/etc/nats/nats.cfg", "on no volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := path.Dir(tc.file)
			expectProblem(t, breakVariant(t, d, files[d], tc.file, tc.old, tc.new).check(img, doc), tc.want)
		})
	}
	// What text cannot remove.
	for name, tc := range map[string]struct {
		mutate func(c *corev1.Container)
		want   string
	}{
		"readiness": {func(c *corev1.Container) { c.ReadinessProbe = nil }, "no readinessProbe"},
		"liveness":  {func(c *corev1.Container) { c.LivenessProbe = nil }, "no livenessProbe"},
		"startup":   {func(c *corev1.Container) { c.StartupProbe = nil }, "no startupProbe"},
		"exec probe": {func(c *corev1.Container) {
			c.ReadinessProbe.HTTPGet, c.ReadinessProbe.Exec = nil, &corev1.ExecAction{Command: []string{"/usr/local/bin/cairn", "health"}}
		}, "readinessProbe: want httpGet /readyz"},
		"host": {func(c *corev1.Container) { c.LivenessProbe.HTTPGet.Host = "127.0.0.1" }, "leave it empty"},
	} {
		t.Run(name, func(t *testing.T) {
			v, _ := loadVariant(t, dir)
			tc.mutate(&v.sets[0].Spec.Template.Spec.Containers[0])
			expectProblem(t, v.check(img, doc), tc.want)
		})
	}
}

// breakVariant decodes the variant's files with old replaced by new in
// file.
func breakVariant(t *testing.T, dir string, files map[string][]byte, file, old, new string) *variant {
	t.Helper()
	if !strings.Contains(string(files[file]), old) {
		t.Fatalf("%s has no %q to break", file, old)
	}
	broken := maps.Clone(files)
	broken[file] = []byte(strings.ReplaceAll(string(files[file]), old, new))
	v, err := decodeVariant(dir, broken)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// expectProblem fails unless one of errs mentions want.
func expectProblem(t *testing.T, errs problems, want string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), want) {
			return
		}
	}
	t.Errorf("no problem mentions %q: %v", want, errs)
}
