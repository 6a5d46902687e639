// The 3D viewer of `hifialbedo serve`: face.glb's mesh shaded by the same model as
// `hifialbedo relight` (src/hifialbedo/relight.py, render/relight.py, ops/sh.py, ops/brdf.py):
//
//   pixel = sRGB( exposure * ( albedo * max(S(n), 0) + sum_lobes k * max(n.h, 0)^s * E  [n.l > 0] ) )
//
// - albedo: albedo.png decoded from sRGB to linear (an sRGB texture: the GPU decodes before
//   filtering, as relight samples the linear map bilinearly);
// - S(n): the order-2 SH shading of ops/sh.py: sum_i f_i L_i Y_i(n), f = [1, 2/3 x3, 1/4 x5],
//   the basis constants below; L (9 x 3) linear-RGB radiance coefficients;
// - the lobe: ops/brdf.py's Blinn-Phong, h = normalize(l + v), no n.l factor, zero where
//   n.l <= 0; k = specular.png / 255; s = 2 / r^4 - 2 with r = roughness.png / 255 clipped to
//   [1e-3, 1], capped at 1e4; (l, E) the light's directional part (ops.sh.directional_part,
//   computed by the server) or the directional light itself;
// - n: the mesh's interpolated vertex normal, normalised per pixel (relight's normals), or
//   with "detailed normals" normal.png's (head frame, object space);
// - frames: world = the head frame of mesh.obj / face.glb (x: the subject's left, y up, z out
//   of the face) in the 3D view, which is relight's front-view camera frame; in the photo
//   view world = that photo's camera frame (x right, y up, z toward the camera), as
//   `relight --over-photo`. Lights are given in world coordinates.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

export const SH_CONSTANTS = [0.282095, 0.488603, 1.092548, 0.315392, 0.546274];
export const FIT_FRACTION = 0.9; // render/relight.py: a front view's mesh spans 0.9 of the image
export const SHOW_MODES = ['relit', 'albedo', 'texture', 'normals', 'specular', 'roughness'];
const SPECULAR_DISPLAY_GAIN = 4.0; // the specular map is dim (k ~ 0.05-0.25): shown x4

/** Real SH basis (9) at a unit direction, ops/sh.py's sh_basis. */
export function shBasis(d) {
  const [x, y, z] = d;
  const [c0, c1, c2, c3, c4] = SH_CONSTANTS;
  return [c0, c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z, c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)];
}

export function normalize(v) {
  const n = Math.hypot(v[0], v[1], v[2]);
  return n > 0 ? [v[0] / n, v[1] / n, v[2] / n] : [0, 0, 1];
}

/** ops/sh.py's directional_light(direction, radiance, ambient): 9 x 3 coefficients. */
export function directionalSH(direction, colour, ambient) {
  const y = shBasis(normalize(direction));
  return y.map((yi, i) => colour.map((c) => Math.PI * yi * c + (i === 0 ? ambient / SH_CONSTANTS[0] : 0)));
}

export function srgbToLinear(c) {
  return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}

/**
 * The light the shader gets from the page's light state:
 *   base: {sh, direction, colour} | null (an estimated or environment light), scaled by strength;
 *   directional: {on, direction, colour (linear RGB), intensity, ambient}: relight --light-dir;
 *   exposure: EV (the image is multiplied by 2^EV).
 * Returns {sh: 9x3, lobes: [{direction, colour}], exposure: multiplier}.
 */
export function composeLight(state) {
  const sh = Array.from({ length: 9 }, () => [0, 0, 0]);
  const lobes = [];
  const base = state.base;
  const k = state.strength ?? 1;
  if (base) {
    base.sh.forEach((row, i) => row.forEach((v, c) => { sh[i][c] += k * v; }));
    const colour = base.colour.map((c) => k * c);
    if (colour.some((c) => c > 0)) lobes.push({ direction: normalize(base.direction), colour });
  }
  const d = state.directional;
  if (d && d.on) {
    const colour = d.colour.map((c) => c * d.intensity);
    directionalSH(d.direction, colour, d.ambient).forEach((row, i) => row.forEach((v, c) => { sh[i][c] += v; }));
    lobes.push({ direction: normalize(d.direction), colour });
  }
  return { sh, lobes, exposure: Math.pow(2, state.exposure ?? 0) };
}

const VERTEX_SHADER = /* glsl */ `
varying vec3 vNormal;
varying vec3 vPos;
varying vec2 vUv;
uniform mat3 normalToWorld;
void main() {
  vUv = uv;
  vec4 world = modelMatrix * vec4(position, 1.0);
  vPos = world.xyz;
  vNormal = normalToWorld * normal;
  gl_Position = projectionMatrix * viewMatrix * world;
}`;

const FRAGMENT_SHADER = /* glsl */ `
precision highp float;
uniform sampler2D albedoMap;
uniform sampler2D textureMap;
uniform sampler2D normalMap;
uniform sampler2D specularMap;
uniform sampler2D roughnessMap;
uniform vec3 sh[9];
uniform vec3 lobeDir[2];
uniform vec3 lobeColour[2];
uniform float lobes;
uniform float exposure;
uniform float show;
uniform float detail;
uniform float hasSpecular;
uniform float orthoView;
uniform vec3 viewDir;
uniform mat3 normalToWorld;
varying vec3 vNormal;
varying vec3 vPos;
varying vec2 vUv;

vec3 shShading(vec3 n) {
  float x = n.x, y = n.y, z = n.z;
  vec3 s = 0.282095 * sh[0]
    + (2.0 / 3.0) * 0.488603 * (y * sh[1] + z * sh[2] + x * sh[3])
    + 0.25 * (1.092548 * (x * y * sh[4] + y * z * sh[5] + x * z * sh[7])
              + 0.315392 * (3.0 * z * z - 1.0) * sh[6] + 0.546274 * (x * x - y * y) * sh[8]);
  return max(s, vec3(0.0));
}

vec3 encodeSRGB(vec3 c) {
  c = clamp(c, 0.0, 1.0);
  vec3 lo = c * 12.92;
  vec3 hi = 1.055 * pow(max(c, vec3(0.0031308)), vec3(1.0 / 2.4)) - 0.055;
  return mix(lo, hi, step(vec3(0.0031308), c));
}

void main() {
  vec3 n = normalize(vNormal);
  if (detail > 0.5) {
    vec3 nd = texture2D(normalMap, vUv).rgb * 2.0 - 1.0;
    if (dot(nd, nd) > 1e-4) n = normalize(normalToWorld * nd);
  }
  vec3 colour;
  if (show < 0.5) {
    vec3 c = texture2D(albedoMap, vUv).rgb * shShading(n);
    if (hasSpecular > 0.5) {
      float k = texture2D(specularMap, vUv).r;
      float r = clamp(texture2D(roughnessMap, vUv).r, 1e-3, 1.0);
      float s = min(2.0 / (r * r * r * r) - 2.0, 1e4);
      vec3 v = orthoView > 0.5 ? viewDir : normalize(cameraPosition - vPos);
      for (int i = 0; i < 2; i++) {
        if (float(i) < lobes) {
          vec3 l = lobeDir[i];
          vec3 h = normalize(l + v);
          if (dot(n, l) > 0.0) c += k * pow(max(dot(n, h), 0.0), s) * lobeColour[i];
        }
      }
    }
    colour = encodeSRGB(c * exposure);
  } else if (show < 1.5) {
    colour = encodeSRGB(texture2D(albedoMap, vUv).rgb);
  } else if (show < 2.5) {
    colour = encodeSRGB(texture2D(textureMap, vUv).rgb);
  } else if (show < 3.5) {
    colour = n * 0.5 + 0.5;
  } else if (show < 4.5) {
    colour = vec3(clamp(texture2D(specularMap, vUv).r * ${SPECULAR_DISPLAY_GAIN.toFixed(1)}, 0.0, 1.0));
  } else {
    colour = vec3(texture2D(roughnessMap, vUv).r);
  }
  gl_FragColor = vec4(colour, 1.0);
}`;

function blackTexture() {
  const t = new THREE.DataTexture(new Uint8Array([0, 0, 0, 255]), 1, 1);
  t.needsUpdate = true;
  return t;
}

async function loadTexture(url, srgb) {
  const loader = new THREE.ImageBitmapLoader();
  // Raw bytes: no premultiplication (albedo.png's alpha is the face region, not coverage)
  // and no colour management (the maps are linear values or sRGB we decode ourselves).
  loader.setOptions({ premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const bitmap = await loader.loadAsync(url);
  const tex = new THREE.Texture(bitmap);
  tex.flipY = false; // glTF's UVs: origin top-left, v down, as the PNG rows
  tex.colorSpace = srgb ? THREE.SRGBColorSpace : THREE.NoColorSpace;
  tex.minFilter = THREE.LinearFilter; // bilinear, no mip-maps: relight's sampling
  tex.magFilter = THREE.LinearFilter;
  tex.generateMipmaps = false;
  tex.wrapS = tex.wrapT = THREE.ClampToEdgeWrapping;
  tex.needsUpdate = true;
  return tex;
}

function makeMaterial(textures) {
  return new THREE.ShaderMaterial({
    vertexShader: VERTEX_SHADER,
    fragmentShader: FRAGMENT_SHADER,
    uniforms: {
      albedoMap: { value: textures.albedo },
      textureMap: { value: textures.texture },
      normalMap: { value: textures.normal },
      specularMap: { value: textures.specular },
      roughnessMap: { value: textures.roughness },
      sh: { value: Array.from({ length: 9 }, () => new THREE.Vector3()) },
      lobeDir: { value: [new THREE.Vector3(0, 0, 1), new THREE.Vector3(0, 0, 1)] },
      lobeColour: { value: [new THREE.Vector3(), new THREE.Vector3()] },
      lobes: { value: 0 },
      exposure: { value: 1 },
      show: { value: 0 },
      detail: { value: 0 },
      hasSpecular: { value: textures.hasSpecular ? 1 : 0 },
      orthoView: { value: 0 },
      viewDir: { value: new THREE.Vector3(0, 0, 1) },
      normalToWorld: { value: new THREE.Matrix3() },
    },
    side: THREE.FrontSide,
  });
}

function applyLight(material, light, show, detail) {
  const u = material.uniforms;
  light.sh.forEach((row, i) => u.sh.value[i].set(row[0], row[1], row[2]));
  u.lobes.value = Math.min(light.lobes.length, 2);
  light.lobes.slice(0, 2).forEach((lobe, i) => {
    u.lobeDir.value[i].set(...lobe.direction);
    u.lobeColour.value[i].set(...lobe.colour);
  });
  u.exposure.value = light.exposure;
  u.show.value = SHOW_MODES.indexOf(show);
  u.detail.value = detail ? 1 : 0;
}

/** The mesh's centroid and relight's turntable radius (render/relight.py turntable_geometry). */
function frontFrame(geometry) {
  const p = geometry.attributes.position;
  const c = new THREE.Vector3();
  for (let i = 0; i < p.count; i++) c.add(new THREE.Vector3().fromBufferAttribute(p, i));
  c.divideScalar(p.count);
  let radius = 1e-9;
  for (let i = 0; i < p.count; i++) {
    const dx = p.getX(i) - c.x, dy = p.getY(i) - c.y, dz = p.getZ(i) - c.z;
    radius = Math.max(radius, Math.hypot(dx, dz), Math.abs(dy));
  }
  return { centre: c, radius };
}

export class FaceViewer {
  constructor(container, photoContainer) {
    this.container = container;
    this.photoContainer = photoContainer;
    this.show = 'relit';
    this.detail = false;
    this.light = composeLight({ base: null, directional: null, exposure: 0 });
    this.lightMarkerOn = false;

    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0x16191f, 1);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(28, 1, 0.01, 100);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.dampingFactor = 0.12;
    this.controls.addEventListener('change', () => this.requestRender());

    this.photoRenderer = new THREE.WebGLRenderer({ antialias: true, alpha: true, preserveDrawingBuffer: true });
    this.photoRenderer.setClearColor(0x000000, 0);
    photoContainer.appendChild(this.photoRenderer.domElement);
    this.photoScene = new THREE.Scene();
    this.photoCamera = new THREE.OrthographicCamera(0, 1, 0, -1, 0.01, 100);

    const marker = new THREE.Mesh(new THREE.SphereGeometry(1, 16, 12), new THREE.MeshBasicMaterial({ color: 0xffd36b }));
    this.marker = marker;
    this.markerLine = new THREE.Line(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0xffd36b, transparent: true, opacity: 0.5 }));
    this.scene.add(marker, this.markerLine);
    marker.visible = this.markerLine.visible = false;

    this._frame = null;
    new ResizeObserver(() => this.resize()).observe(container);
    new ResizeObserver(() => this.resize()).observe(photoContainer);
    this.resize();
  }

  /** Load a finished job: `scene` is GET /api/jobs/{id}/scene. */
  async load(scene) {
    this.clear();
    const gltf = await new GLTFLoader().loadAsync(scene.files['face.glb']);
    let geometry = null;
    gltf.scene.traverse((o) => { if (o.isMesh && !geometry) geometry = o.geometry; });
    if (!geometry) throw new Error('face.glb has no mesh');
    const black = blackTexture();
    const files = scene.files;
    const [albedo, texture, normal, specular, roughness] = await Promise.all([
      loadTexture(files['albedo.png'], true),
      loadTexture(files['texture.png'], true),
      loadTexture(files['normal.png'], false),
      files['specular.png'] ? loadTexture(files['specular.png'], false) : black,
      files['roughness.png'] ? loadTexture(files['roughness.png'], false) : black,
    ]);
    const textures = { albedo, texture, normal, specular, roughness, hasSpecular: scene.has_specular };
    this.geometry = geometry;
    this.textures = textures;
    this.material = makeMaterial(textures);
    this.mesh = new THREE.Mesh(geometry, this.material);
    this.scene.add(this.mesh);
    this.frame = frontFrame(geometry);
    this.marker.scale.setScalar(this.frame.radius * 0.05);

    this.photoMaterial = makeMaterial(textures);
    this.photoMaterial.uniforms.orthoView.value = 1;
    this.photoMesh = new THREE.Mesh(geometry, this.photoMaterial);
    this.photoMesh.matrixAutoUpdate = false;
    this.photoScene.add(this.photoMesh);
    this.views = scene.views;
    this.setView(0);
    this.frontView();
    this.update();
  }

  clear() {
    for (const obj of [this.mesh, this.photoMesh]) {
      if (obj) obj.parent.remove(obj);
    }
    if (this.material) this.material.dispose();
    if (this.photoMaterial) this.photoMaterial.dispose();
    if (this.textures) for (const t of Object.values(this.textures)) if (t && t.isTexture) t.dispose();
    this.mesh = this.photoMesh = this.material = this.photoMaterial = this.textures = null;
  }

  /** Pose the photo view's mesh in photo `index`'s camera (report.json camera_pose). */
  setView(index) {
    const view = this.views[index];
    this.viewIndex = index;
    const { rotation: R, centre: t, scale: s } = view.camera_pose;
    // p_camera = s * p_head @ R + t (row vectors): the matrix s R^T, translation t.
    this.photoMesh.matrix.set(
      s * R[0][0], s * R[1][0], s * R[2][0], t[0],
      s * R[0][1], s * R[1][1], s * R[2][1], t[1],
      s * R[0][2], s * R[1][2], s * R[2][2], t[2],
      0, 0, 0, 1,
    );
    this.photoMesh.matrixWorldNeedsUpdate = true;
    this.photoMaterial.uniforms.normalToWorld.value.set(
      R[0][0], R[1][0], R[2][0],
      R[0][1], R[1][1], R[2][1],
      R[0][2], R[1][2], R[2][2],
    );
    const [w, h] = view.working_size;
    const cam = this.photoCamera;
    cam.left = 0; cam.right = w; cam.top = 0; cam.bottom = -h; // pixel row = -y
    cam.position.set(0, 0, t[2] + 50 * s);
    cam.near = 0.01 * s; cam.far = 100 * s;
    cam.updateProjectionMatrix();
    this.resize();
  }

  /** The camera in front of the face (the 3D view's start; relight's front view direction). */
  frontView() {
    if (!this.frame) return;
    const { centre, radius } = this.frame;
    const dist = (radius / FIT_FRACTION) / Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2)) * 0.9;
    this.camera.position.set(centre.x, centre.y, centre.z + dist);
    this.camera.near = dist / 50; this.camera.far = dist * 10;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(centre);
    this.controls.update();
    this.requestRender();
  }

  /** Turn the 3D view's camera about the face: azimuth (degrees, + to the face's left = image
   * right) and elevation (degrees, + from above), at the front view's distance. */
  orbit(azimuth, elevation) {
    this.frontView();
    const { centre } = this.frame;
    const offset = this.camera.position.clone().sub(centre);
    const r = offset.length();
    const a = THREE.MathUtils.degToRad(azimuth), e = THREE.MathUtils.degToRad(elevation);
    this.camera.position.set(centre.x + r * Math.cos(e) * Math.sin(a), centre.y + r * Math.sin(e), centre.z + r * Math.cos(e) * Math.cos(a));
    this.controls.update();
    this.requestRender();
  }

  setLight(state) {
    this.lightState = state;
    this.light = composeLight(state);
    const d = state.directional;
    this.lightMarkerOn = !!(d && d.on);
    if (this.lightMarkerOn && this.frame) {
      const dir = new THREE.Vector3(...normalize(d.direction));
      const at = this.frame.centre.clone().addScaledVector(dir, this.frame.radius * 1.3);
      this.marker.position.copy(at);
      this.markerLine.geometry.setFromPoints([this.frame.centre.clone().addScaledVector(dir, this.frame.radius * 0.9), at]);
    }
    this.update();
  }

  setShow(mode) { this.show = mode; this.update(); }
  setDetail(on) { this.detail = on; this.update(); }

  update() {
    if (this.material) {
      applyLight(this.material, this.light, this.show, this.detail);
      applyLight(this.photoMaterial, this.light, this.show, this.detail);
    }
    this.marker.visible = this.markerLine.visible = this.lightMarkerOn && !!this.mesh;
    this.requestRender();
  }

  resize() {
    const w = Math.max(1, this.container.clientWidth), h = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    if (this.views) {
      const [vw, vh] = this.views[this.viewIndex].working_size;
      const pw = Math.max(1, this.photoContainer.clientWidth);
      this.photoRenderer.setSize(pw, Math.round(pw * vh / vw), false);
    }
    this.requestRender();
  }

  requestRender() {
    if (this._frame !== null) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = null;
      if (this.controls.update()) this.requestRender();
      this.renderNow();
    });
  }

  renderNow() {
    if (this.material) this.material.uniforms.orthoView.value = 0;
    this.renderer.render(this.scene, this.camera);
    if (this.photoMesh) this.photoRenderer.render(this.photoScene, this.photoCamera);
  }

  /**
   * Render relight's front view (render/relight.py turntable_geometry at yaw 0): an
   * orthographic camera along +z through the mesh's centroid, the turning radius filling
   * FIT_FRACTION of a size x size image, no anti-aliasing, and read it back.
   * Returns {width, height, rgba: base64 of the top-down RGBA bytes} (alpha 0 off the mesh).
   */
  renderFront(size) {
    const { centre, radius } = this.frame;
    const half = radius / FIT_FRACTION;
    const cam = new THREE.OrthographicCamera(-half, half, half, -half, radius * 0.1, radius * 20);
    cam.position.set(centre.x, centre.y, centre.z + radius * 5);
    cam.lookAt(centre);
    cam.updateMatrixWorld();
    const target = new THREE.WebGLRenderTarget(size, size, { type: THREE.UnsignedByteType, samples: 0, depthBuffer: true });
    const u = this.material.uniforms;
    u.orthoView.value = 1;
    u.viewDir.value.set(0, 0, 1);
    const markerVisible = this.marker.visible;
    this.marker.visible = this.markerLine.visible = false;
    const clear = new THREE.Color();
    this.renderer.getClearColor(clear);
    const alpha = this.renderer.getClearAlpha();
    this.renderer.setClearColor(0x000000, 0);
    this.renderer.setRenderTarget(target);
    this.renderer.render(this.scene, cam);
    const pixels = new Uint8Array(size * size * 4);
    this.renderer.readRenderTargetPixels(target, 0, 0, size, size, pixels);
    this.renderer.setRenderTarget(null);
    this.renderer.setClearColor(clear, alpha);
    target.dispose();
    u.orthoView.value = 0;
    this.marker.visible = this.markerLine.visible = markerVisible;
    this.requestRender();
    const flipped = new Uint8Array(size * size * 4); // GL rows are bottom-up
    for (let row = 0; row < size; row++) {
      flipped.set(pixels.subarray((size - 1 - row) * size * 4, (size - row) * size * 4), row * size * 4);
    }
    let binary = '';
    for (let i = 0; i < flipped.length; i += 0x8000) binary += String.fromCharCode.apply(null, flipped.subarray(i, i + 0x8000));
    return { width: size, height: size, rgba: btoa(binary) };
  }
}
