"""The original UGSCNN MeshConv computation (Jiang et al., ICLR 2019), the ``original`` column of ``meshconv.py``.

Re-implemented here from the paper's description; ``meshconv.py`` checks it against
:class:`meshcnn.MeshConv` with the same weights.
"""

from __future__ import annotations

import igl
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

import meshcnn
from meshcnn.geometry import operators as ops

BATCH, CHANNELS = 8, 16


def _coo(matrix: sp.spmatrix, device: torch.device) -> torch.Tensor:
    m = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.stack([m.row, m.col]).astype(np.int64))
    values = torch.from_numpy(m.data).float()
    return torch.sparse_coo_tensor(indices, values, m.shape, device=device, check_invariants=False).coalesce()


class OriginalMeshConv(nn.Module):
    r"""The MeshConv of Jiang et al. (ICLR 2019) computed the way the original code does.

    For a signal ``x`` (B, C, V):

    * face gradient ``g = G x`` with libigl's ``(3F, V)`` gradient (one ``torch.sparse.mm``);
    * per face, ``g_ew = <g, e_ew>`` and ``g_ns = <g, e_ns>`` with the unit east/north
      vectors at the face centroid (dense elementwise products);
    * face-to-vertex area-weighted average of ``[g_ew, g_ns]`` (one ``torch.sparse.mm``),
      times the mean edge length ``h`` (meshcnn's dimension-free scaling);
    * Laplacian ``L x`` (one ``torch.sparse.mm``);
    * ``feat = stack([x, Lx, D_ew x, D_ns x], -1)`` (B, C, V, 4) and
      ``y = sum_{c,t} feat[b, None, c, v, t] * W[None, o, c, None, t]``: the
      ``(B, O, C, V, 4)`` broadcast multiply-sum; plus the bias.

    ``chunk``: process the batch in pieces of this many samples (to bound the
    broadcast's memory at large levels); the result is the same.
    """

    def __init__(
        self, level: int, weight: torch.Tensor, bias: torch.Tensor, device: torch.device, chunk: int | None = None
    ) -> None:
        super().__init__()
        mesh = meshcnn.icosphere(level)
        v, f = mesh.vertices, mesh.faces
        self.grad = _coo(igl.grad(v, f), device)
        self.laplacian = _coo(mesh.laplacian, device)
        self.average = _coo(ops.face_to_vertex(v, f), device)
        east, north = ops.tangent_frames(v, f)  # (F, 3) each
        # igl.grad stacks all x rows, then y, then z: (3, F, 1) to broadcast over B*C columns
        self.register_buffer("east", torch.from_numpy(east.T.copy()).float().unsqueeze(-1).to(device))
        self.register_buffer("north", torch.from_numpy(north.T.copy()).float().unsqueeze(-1).to(device))
        self.scale = mesh.mean_edge_length
        self.num_faces = mesh.num_faces
        self.weight = nn.Parameter(weight.detach().clone().to(device))
        self.bias = nn.Parameter(bias.detach().clone().to(device))
        self.chunk = chunk

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, num_vertices = x.shape
        cols = x.reshape(batch * channels, num_vertices).t()  # (V, B*C)
        grad_face = torch.sparse.mm(self.grad, cols).view(3, self.num_faces, batch * channels)
        grad_ew = (grad_face * self.east).sum(0)  # (F, B*C)
        grad_ns = (grad_face * self.north).sum(0)
        vert = torch.sparse.mm(self.average, torch.cat([grad_ew, grad_ns], dim=1)) * self.scale  # (V, 2*B*C)
        lap = torch.sparse.mm(self.laplacian, cols)  # (V, B*C)

        def to_bcv(t: torch.Tensor) -> torch.Tensor:
            return t.t().reshape(batch, channels, num_vertices)

        vert_ew, vert_ns = vert[:, : batch * channels], vert[:, batch * channels :]
        feat = torch.stack([x, to_bcv(lap), to_bcv(vert_ew), to_bcv(vert_ns)], dim=-1)  # (B, C, V, 4)
        out = (feat.unsqueeze(1) * self.weight[None, :, :, None, :]).sum(2).sum(-1)  # (B, O, C, V, 4) -> (B, O, V)
        return out + self.bias.view(1, -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.chunk is None or self.chunk >= x.shape[0]:
            return self._forward(x)
        return torch.cat([self._forward(part) for part in x.split(self.chunk)], dim=0)


def original_chunk(level: int, device: torch.device, max_gb: float) -> int | None:
    """Batch chunk that keeps the ``(B, O, C, V, 4)`` broadcast under ``max_gb`` (None: whole batch)."""
    per_sample = CHANNELS * CHANNELS * meshcnn.icosphere(level).num_vertices * 4 * 4  # float32 bytes
    if per_sample * BATCH <= max_gb * 2**30:
        return None
    return max(1, int(max_gb * 2**30 // per_sample))
