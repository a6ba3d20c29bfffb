"""GLSL sources. Shading happens in linear RGB; output is sRGB-encoded by hand (the
render target is a plain RGBA8 texture, so the encoding is ours and explicit)."""

from __future__ import annotations

from dataclasses import dataclass

# Compact list of active morph targets, packed 4 per ivec4/vec4 (std140 arrays have a
# 16-byte stride, so packing avoids wasting 3/4 of the block).
MAX_ACTIVE_TARGETS = 64
DELTA_TEXTURE_WIDTH = 4096  # texels per row of the morph delta texture (power of two)

# Joints of one skin: the top three rows of each skinning matrix (engine.skeleton).
MAX_JOINTS = 256  # == engine.gltf_skin.MAX_JOINTS

SKIN_BLOCK = f"""
#ifdef SKINNED
layout(std140) uniform Skin {{
    vec4 u_joint_rows[{MAX_JOINTS * 3}];  // joint j: rows 3j, 3j+1, 3j+2
}};
uniform int u_skin_influences;  // 0: drawn unskinned, else the primitive's influences
// SKIN_SET0 (1-4): the influences of the first set the primitive uses, in the first
// components (the rest unread). SKIN_EIGHT: JOINTS_1 / WEIGHTS_1 too. Each count is a
// variant of its own: llvmpipe runs a loop's skipped iterations as well.
in vec4 in_joints0;
in vec4 in_weights0;
#ifdef SKIN_EIGHT
in vec4 in_joints1;
in vec4 in_weights1;
#endif

// Weighted sum of the joints' rows (linear-blend skinning). Weights sum to 1, or to 0
// for a vertex bound to no joint: the rest of the sum is the identity.
void skin_rows(out vec4 r0, out vec4 r1, out vec4 r2) {{
    r0 = vec4(0.0); r1 = vec4(0.0); r2 = vec4(0.0);
    float total = 0.0;
    for (int i = 0; i < SKIN_SET0; ++i) {{
        int j = int(in_joints0[i]) * 3;
        float w = in_weights0[i];
        r0 += w * u_joint_rows[j]; r1 += w * u_joint_rows[j + 1]; r2 += w * u_joint_rows[j + 2];
        total += w;
    }}
#ifdef SKIN_EIGHT
    for (int i = 0; i < 4; ++i) {{
        int j = int(in_joints1[i]) * 3;
        float w = in_weights1[i];
        r0 += w * u_joint_rows[j]; r1 += w * u_joint_rows[j + 1]; r2 += w * u_joint_rows[j + 2];
    }}
    total += dot(in_weights1, vec4(1.0));
#endif
    float rest = 1.0 - total;
    r0.x += rest; r1.y += rest; r2.z += rest;
}}
#endif
"""

MORPH_BLOCK = f"""
#ifdef MORPH_TARGETS
layout(std140) uniform Morph {{
    ivec4 u_morph_count;                               // x = number of active targets
    ivec4 u_morph_index[{MAX_ACTIVE_TARGETS // 4}];    // target indices, 4 per element
    vec4 u_morph_weight[{MAX_ACTIVE_TARGETS // 4}];    // their weights, same packing
}};
#endif
"""

LIT_VERTEX = (
    """
#version 330
"""
    + MORPH_BLOCK
    + SKIN_BLOCK
    + f"""
#ifdef MORPH_TARGETS
// Deltas of every target: texel (target * vertex_count + vertex) * 2 holds the position
// delta, the next texel the normal delta. Only the active targets are fetched.
uniform sampler2D u_deltas;
uniform int u_vertex_count;
ivec2 delta_texel(int i) {{
    return ivec2(i & {DELTA_TEXTURE_WIDTH - 1}, i >> {DELTA_TEXTURE_WIDTH.bit_length() - 1});
}}
#endif
uniform mat4 u_model;
uniform mat3 u_normal_matrix;
uniform mat4 u_view_projection;
#ifdef OUTLINE
// MToon's outline: the hull pushed out along the normals, in model units or (screen) as
// a fraction of the screen's height; u_aspect is the projection's x scale over its y.
uniform float u_outline_width;
uniform bool u_outline_screen;
uniform float u_aspect;
#endif

in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv;
#ifdef UV1
in vec2 in_uv1;  // TEXCOORD_1 (a texture's texCoord 1 reads it)
out vec2 v_uv1;
#endif
#ifdef VERTEX_COLORS
in vec4 in_color;  // COLOR_0, linear
out vec4 v_color;
#endif

void main() {{
    vec3 position = in_position;
    vec3 normal = in_normal;
#ifdef MORPH_TARGETS
    for (int k = 0; k < u_morph_count.x; ++k) {{
        int target = u_morph_index[k >> 2][k & 3];
        float weight = u_morph_weight[k >> 2][k & 3];
        int base = (target * u_vertex_count + gl_VertexID) * 2;
        position += weight * texelFetch(u_deltas, delta_texel(base), 0).xyz;
        normal += weight * texelFetch(u_deltas, delta_texel(base + 1), 0).xyz;
    }}
#endif
#ifdef SKINNED
    if (u_skin_influences > 0) {{  // after the morphs, as glTF specifies
        vec4 r0, r1, r2;
        skin_rows(r0, r1, r2);
        vec4 p = vec4(position, 1.0);
        position = vec3(dot(r0, p), dot(r1, p), dot(r2, p));
        normal = vec3(dot(r0.xyz, normal), dot(r1.xyz, normal), dot(r2.xyz, normal));
    }}
#endif
#ifdef OUTLINE
    if (!u_outline_screen) position += normalize(normal) * u_outline_width;
#endif
    vec4 world = u_model * vec4(position, 1.0);
    v_world = world.xyz;
    v_normal = u_normal_matrix * normal;
    v_uv = in_uv;
#ifdef UV1
    v_uv1 = in_uv1;
#endif
#ifdef VERTEX_COLORS
    v_color = in_color;
#endif
    gl_Position = u_view_projection * world;
#ifdef OUTLINE
    if (u_outline_screen) {{  // as three-vrm: a clip-space offset, the same in x and y
        vec2 across = (u_view_projection * vec4(v_normal, 0.0)).xy;
        across = normalize(across + vec2(1e-9, 0.0));
        across.x *= u_aspect;
        gl_Position.xy += 2.0 * u_outline_width * across * gl_Position.w;
    }}
#endif
}}
"""
)

LIT_FRAGMENT = """
#version 330
uniform vec4 u_base_color;          // linear
uniform int u_alpha_mode;           // 0 opaque, 1 mask, 2 blend
#ifdef ALPHA_MASK
uniform float u_alpha_cutoff;
#endif
uniform vec3 u_emissive;            // linear, times KHR_materials_emissive_strength
// Per texture: UV set (0/1) and KHR_texture_transform as the rows of a 2x3 matrix.
#ifdef BASE_TEXTURE
uniform sampler2D u_base_texture;   // sRGB-encoded
uniform int u_base_uv_set;
uniform vec3 u_base_uv_row[2];
#endif
#ifdef EMISSIVE_TEXTURE
uniform sampler2D u_emissive_texture;  // sRGB-encoded
uniform int u_emissive_uv_set;
uniform vec3 u_emissive_uv_row[2];
#endif
#ifdef OUTLINE
uniform vec3 u_outline_color;       // linear
uniform float u_outline_mix;        // how much the lights colour it (0: as authored)
#endif
#ifdef MATERIAL_EXTRAS
uniform bool u_unlit;               // KHR_materials_unlit
uniform bool u_toon;                // MToon approximation (engine.gltf_material)
uniform vec3 u_shade_color;         // linear
uniform float u_toony;
uniform float u_shade_shift;
uniform vec3 u_rim_color;           // linear
uniform vec3 u_rim;                 // MToon's rim: fresnel power, lift, lighting mix
#ifdef MATCAP_TEXTURE
uniform sampler2D u_matcap_texture; // sRGB-encoded, read where the view-space normal points
uniform vec3 u_matcap_uv_row[2];
uniform vec3 u_matcap_factor;       // linear
uniform mat3 u_view_rotation;       // world -> camera
#endif
#endif

uniform vec3 u_light_dir[3];        // key, fill, rim: unit vectors towards the light
uniform vec3 u_light_color[3];      // colour * intensity, linear
uniform vec3 u_ambient;
uniform vec3 u_camera_position;
uniform float u_exposure;

in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv;
#ifdef UV1
in vec2 v_uv1;
#endif
#ifdef VERTEX_COLORS
in vec4 v_color;
#define VERTEX_COLOR v_color
#else
#define VERTEX_COLOR vec4(1.0)
#endif
out vec4 f_color;

vec2 texture_uv(int set, vec3 row[2]) {
#ifdef UV1
    vec3 uv = vec3(set == 1 ? v_uv1 : v_uv, 1.0);
#else
    vec3 uv = vec3(v_uv, 1.0);
#endif
    return vec2(dot(row[0], uv), dot(row[1], uv));
}

// sRGB curves without pow(), which cost llvmpipe ~20% of a frame here: a quartic fit for
// the decode and Ian Taylor's square-root fit for the encode, each within 0.25 of an 8-bit
// level of the exact curve (tests/engine/test_gltf_materials.py checks them).
vec3 srgb_to_linear(vec3 c) {
    vec3 fit = (((-0.105344432 * c + 0.503802766) * c + 0.574241294) * c + 0.025616219) * c
        + 0.001184415;
    return mix(c / 12.92, fit, step(0.04045, c));
}
vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    vec3 s1 = sqrt(c), s2 = sqrt(s1), s3 = sqrt(s2);
    vec3 curve = 0.662002687 * s1 + 0.684122060 * s2 - 0.323583601 * s3 - 0.0225411470 * c;
    return mix(c * 12.92, curve, step(0.0031308, c));
}
float pow40(float x) {  // x^32 * x^8 by squaring: pow() is a log and an exp on llvmpipe
    float x2 = x * x, x4 = x2 * x2, x8 = x4 * x4, x16 = x8 * x8;
    return x16 * x16 * x8;
}
vec3 tonemap(vec3 x) {  // Narkowicz ACES fit: keeps highlights from clipping harshly
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}

void main() {
    vec4 base = u_base_color * VERTEX_COLOR;
    vec3 texel = vec3(1.0);
#ifdef BASE_TEXTURE
    vec4 t = texture(u_base_texture, texture_uv(u_base_uv_set, u_base_uv_row));
    texel = srgb_to_linear(t.rgb);
    base *= vec4(texel, t.a);
#endif
#ifdef ALPHA_MASK
    if (base.a < u_alpha_cutoff) discard;
#endif
#ifdef OUTLINE  // one flat colour where the hull shows (a cut-out one where its texture is)
    // The toon's key and fill, and a little of the rim light (every light read: the
    // frame writes the whole array).
    vec3 lights = u_ambient + (u_light_color[0] + u_light_color[1]) * 0.55 + u_light_color[2] * 0.1;
    vec3 outline = u_outline_color * mix(vec3(1.0), lights, u_outline_mix);
    f_color = vec4(linear_to_srgb(tonemap(outline * u_exposure)), 1.0);
    return;
#endif
    float alpha = u_alpha_mode == 2 ? base.a : 1.0;
    vec3 emissive = u_emissive;
#ifdef EMISSIVE_TEXTURE
    vec2 euv = texture_uv(u_emissive_uv_set, u_emissive_uv_row);
    emissive *= srgb_to_linear(texture(u_emissive_texture, euv).rgb);
#endif
#ifdef MATERIAL_EXTRAS
    if (u_unlit) {  // the base colour as authored: no lights, exposure or tone curve
        f_color = vec4(linear_to_srgb(base.rgb + emissive), alpha);
        return;
    }
#endif

    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    vec3 v = normalize(u_camera_position - v_world);
    vec3 color = u_ambient * base.rgb;
#ifdef MATERIAL_EXTRAS
    if (u_toon) {  // MToon: lit colour above the key light's terminator, shade colour below
        float width = max(1.0 - u_toony, 1e-3);
        float ndl = dot(n, u_light_dir[0]) + u_shade_shift;
        float lit = clamp((ndl + width) / (2.0 * width), 0.0, 1.0);
        vec3 shade = u_shade_color * texel * VERTEX_COLOR.rgb;
        color += mix(shade, base.rgb, lit) * (u_light_color[0] + u_light_color[1]) * 0.55;
        float facing = 1.0 - dot(n, normalize(u_camera_position - v_world)) + u_rim.y;
        vec3 rim = u_rim_color * pow(clamp(facing, 0.0, 1.0), u_rim.x);
#ifdef MATCAP_TEXTURE
        {  // as three-vrm: the view-space normal's UV, seen along the view direction,
           // added to the rim before the rim's lighting
            vec3 vn = u_view_rotation * n, vd = u_view_rotation * v;
            vec3 x = normalize(vec3(vd.z, 0.0, -vd.x));
            vec3 y = cross(vd, x);
            vec3 sphere = vec3(0.5 + 0.5 * vec2(dot(x, vn), -dot(y, vn)), 1.0);
            vec2 muv = vec2(dot(u_matcap_uv_row[0], sphere), dot(u_matcap_uv_row[1], sphere));
            rim += u_matcap_factor * srgb_to_linear(texture(u_matcap_texture, muv).rgb);
        }
#endif
        vec3 rim_light = mix(vec3(1.0), u_ambient + (u_light_color[0] + u_light_color[1]) * 0.55,
                             u_rim.z);
        color += rim * rim_light + emissive;
        f_color = vec4(linear_to_srgb(tonemap(color * u_exposure)), alpha);
        return;
    }
#endif
    for (int i = 0; i < 2; ++i) {  // key and fill: wrapped diffuse (soft, skin-friendly) + spec
        vec3 l = u_light_dir[i];
        float wrap = max((dot(n, l) + 0.2) / 1.2, 0.0);
        float spec = pow40(max(dot(n, normalize(l + v)), 0.0)) * 0.12 * step(0.0, dot(n, l));
        color += u_light_color[i] * (base.rgb * wrap + spec);
    }
    // Rim: grazing angles lit from behind, outlining the silhouette against the background.
    float grazing = 1.0 - max(dot(n, v), 0.0);
    float fresnel = grazing * grazing * grazing;
    color += u_light_color[2] * fresnel * max(dot(n, u_light_dir[2]) * 0.5 + 0.5, 0.0) * 0.5;

    color += emissive;
    f_color = vec4(linear_to_srgb(tonemap(color * u_exposure)), alpha);
}
"""


@dataclass(frozen=True)
class LitVariant:
    """Which optional parts one compiled variant of the lit shader has. llvmpipe runs a
    branch's code even where a uniform skips it, which cost every other avatar 5-10% of
    its frame (a 4-joint skin 1.7 ms a frame for the 8-joint loop it never used; every
    fragment a bilinear fetch of a 1x1 placeholder for the emissive texture no bundled
    material has), so each part lives only in the variants that need it."""

    extras: bool = False  # the unlit and MToon branches
    influences: int = 0  # linear-blend skinning with 1-4 or 8 joints a vertex (0: none)
    base_texture: bool = False  # the base colour texture is sampled
    emissive_texture: bool = False  # the emissive texture is sampled
    matcap_texture: bool = False  # MToon's matcap is sampled (with extras)
    uv1: bool = False  # a sampled texture reads TEXCOORD_1
    vertex_colors: bool = False  # COLOR_0 multiplies the base colour
    morph_targets: bool = False  # the vertex shader's target loop (not with host morphs)
    alpha_mask: bool = False  # alpha MASK: fragments under the cutoff are discarded
    outline: bool = False  # MToon's outline pass: the hull pushed out, one flat colour

    def sources(self) -> tuple[str, str]:
        """(vertex, fragment) GLSL of this variant."""
        defines = (
            "#define MATERIAL_EXTRAS\n" * self.extras
            + "#define SKINNED\n" * (self.influences > 0)
            + f"#define SKIN_SET0 {min(self.influences, 4)}\n" * (self.influences > 0)
            + "#define SKIN_EIGHT\n" * (self.influences > 4)
            + "#define BASE_TEXTURE\n" * self.base_texture
            + "#define EMISSIVE_TEXTURE\n" * self.emissive_texture
            + "#define MATCAP_TEXTURE\n" * self.matcap_texture
            + "#define UV1\n" * self.uv1
            + "#define VERTEX_COLORS\n" * self.vertex_colors
            + "#define MORPH_TARGETS\n" * self.morph_targets
            + "#define ALPHA_MASK\n" * self.alpha_mask
            + "#define OUTLINE\n" * self.outline
        )
        version = "#version 330\n"
        return (
            LIT_VERTEX.replace(version, version + defines, 1),
            LIT_FRAGMENT.replace(version, version + defines, 1),
        )


BACKGROUND_VERTEX = """
#version 330
out vec2 v_uv;
void main() {  // one full-screen triangle, no buffers
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 1.0, 1.0);
}
"""

BACKGROUND_FRAGMENT = """
#version 330
uniform vec3 u_top;     // linear
uniform vec3 u_bottom;  // linear
in vec2 v_uv;
out vec4 f_color;
vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}
void main() {
    float t = smoothstep(0.0, 1.0, v_uv.y);
    vec3 c = linear_to_srgb(mix(u_bottom, u_top, t));
    // Ordered-noise dither hides 8-bit banding in the smooth gradient.
    float noise = fract(52.9829189 * fract(dot(gl_FragCoord.xy, vec2(0.06711056, 0.00583715))));
    f_color = vec4(c + (noise - 0.5) / 255.0, 1.0);
}
"""
