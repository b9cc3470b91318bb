//go:build viewer

package viewer

// GLSL 3.30 core: the oldest version the viewer runs on.

const nodeVS = `#version 330 core
layout(location = 0) in vec2 aPos;
layout(location = 1) in uint aColor; // RGBA8, R in the low byte
layout(location = 2) in float aSize;
uniform mat3 uMVP;
uniform float uZoom;
uniform float uPointPx;
uniform float uMaxPointPx;
flat out uint vColor;
flat out uint vID;
flat out float vPx;
void main() {
	float px = aSize * uZoom;
	vColor = aColor;
	vID = uint(gl_VertexID) + 1u;
	vPx = px;
	if (aSize <= 0.0 || (aColor >> 24) == 0u || px > uMaxPointPx) {
		gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
		gl_PointSize = 1.0;
		return;
	}
	gl_Position = vec4((uMVP * vec3(aPos, 1.0)).xy, 0.0, 1.0);
	gl_PointSize = px <= uPointPx ? 1.0 : px;
}
`

// Three flat scalars per point (packed colour, id, diameter) keep
// llvmpipe's per-primitive set-up small.
const nodeFS = `#version 330 core
flat in uint vColor;
flat in uint vID;
flat in float vPx;
uniform float uPointPx;
layout(location = 0) out vec4 oColor;
layout(location = 1) out uint oID;
void main() {
	vec4 c = vec4(uvec4(vColor, vColor >> 8, vColor >> 16, vColor >> 24) & 0xffu) / 255.0;
	oID = vID;
	if (vPx <= uPointPx) {
		oColor = c;
		return;
	}
	// Coverage from the distance to the rim in pixels. The sprite is vPx
	// wide, so only the outer half-pixel of the rim where it touches the
	// sprite's sides is cut (a wider sprite costs ~40 % more fragments
	// for small nodes).
	vec2 p = gl_PointCoord - 0.5;
	float a = clamp(0.5 + vPx * (0.25 - dot(p, p)), 0.0, 1.0);
	if (a <= 0.0) discard;
	oColor = vec4(c.rgb, c.a * a);
}
`

const largeVS = `#version 330 core
layout(location = 0) in vec2 aCorner;
layout(location = 1) in vec2 aPos;
layout(location = 2) in float aPx;
layout(location = 3) in vec4 aColor;
layout(location = 4) in uint aSlot;
uniform mat3 uMVP;
uniform vec2 uViewport;
out vec2 vLocal;
flat out vec4 vColor;
flat out uint vID;
flat out float vPx;
void main() {
	float h = 0.5 * (aPx + 1.0);
	vec2 c = (uMVP * vec3(aPos, 1.0)).xy;
	gl_Position = vec4(c + aCorner * h * 2.0 / uViewport, 0.0, 1.0);
	vLocal = aCorner * h;
	vColor = aColor;
	vID = aSlot + 1u;
	vPx = aPx;
}
`

const largeFS = `#version 330 core
in vec2 vLocal;
flat in vec4 vColor;
flat in uint vID;
flat in float vPx;
layout(location = 0) out vec4 oColor;
layout(location = 1) out uint oID;
void main() {
	float a = clamp(0.5 - (length(vLocal) - 0.5 * vPx), 0.0, 1.0);
	if (a <= 0.0) discard;
	oColor = vec4(vColor.rgb, vColor.a * a);
	oID = vID;
}
`

// An edge with a hidden end (size 0 or alpha 0) draws nothing: vHidden is
// 1 at the hidden end, so it is above 0 all along the line.
const edgeVS = `#version 330 core
layout(location = 0) in vec2 aPos;
layout(location = 1) in vec4 aColor;
layout(location = 2) in float aSize;
uniform mat3 uMVP;
uniform float uAlpha;
out vec4 vColor;
noperspective out float vHidden;
void main() {
	gl_Position = vec4((uMVP * vec3(aPos, 1.0)).xy, 0.0, 1.0);
	vColor = vec4(aColor.rgb, aColor.a * uAlpha);
	vHidden = (aSize <= 0.0 || aColor.a <= 0.0) ? 1.0 : 0.0;
}
`

const edgeFS = `#version 330 core
in vec4 vColor;
noperspective in float vHidden;
layout(location = 0) out vec4 oColor;
void main() {
	if (vHidden > 0.0) discard;
	oColor = vColor;
}
`

const textVS = `#version 330 core
layout(location = 0) in vec4 aXYUV;
uniform vec2 uViewport;
uniform vec2 uAtlas;
out vec2 vUV;
void main() {
	gl_Position = vec4(aXYUV.x / uViewport.x * 2.0 - 1.0, 1.0 - aXYUV.y / uViewport.y * 2.0, 0.0, 1.0);
	vUV = aXYUV.zw / uAtlas;
}
`

// Text from the signed distance field (0.5 on the outline) in one pass:
// white glyphs over a dark halo uHalo pixels wide, both from the same
// field. The antialiasing ramps are one screen pixel wide at any scale:
// fwidth gives how much the field changes across a pixel.
const textFS = `#version 330 core
in vec2 vUV;
uniform sampler2D uTex;
uniform float uHalo;
layout(location = 0) out vec4 oColor;
void main() {
	float d = texture(uTex, vUV).r;
	float w = max(fwidth(d), 1e-4); // before any discard: derivatives need the whole quad
	if (d <= 0.0) discard; // beyond the field's reach
	float fill = smoothstep(0.5 - 0.5 * w, 0.5 + 0.5 * w, d);
	float halo = 0.8 * smoothstep(0.5 - (uHalo + 0.5) * w, 0.5 - (uHalo - 0.5) * w, d);
	float a = fill + halo * (1.0 - fill);
	if (a <= 0.0) discard;
	oColor = vec4(vec3(fill / a), a);
}
`

// The bare draw of the benchmarks: flat discs and flat lines from the same
// buffers, one colour attachment, no SDF rim, LOD, labels, overlay or ids.
const bareNodeVS = `#version 330 core
layout(location = 0) in vec2 aPos;
layout(location = 1) in vec4 aColor;
layout(location = 2) in float aSize;
uniform mat3 uMVP;
uniform float uZoom;
flat out vec4 vColor;
void main() {
	gl_Position = vec4((uMVP * vec3(aPos, 1.0)).xy, 0.0, 1.0);
	gl_PointSize = max(aSize * uZoom, 1.0);
	vColor = aColor;
}
`

const bareNodeFS = `#version 330 core
flat in vec4 vColor;
layout(location = 0) out vec4 oColor;
void main() {
	vec2 p = gl_PointCoord - 0.5;
	if (dot(p, p) > 0.25) discard;
	oColor = vColor;
}
`
