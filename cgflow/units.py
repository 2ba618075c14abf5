"""Unit conventions and every conversion between them, in one place.

cgflow stores and computes in GROMACS units unless a name says otherwise:

=========  ===============================
quantity   GROMACS unit (internal)
=========  ===============================
length     nm
energy     kJ/mol
time       ps
angle      degree (equilibrium angles), rad (force constants are per rad^2)
mass       g/mol (amu)
pressure   bar
density    kg/m^3 internally, g/cm^3 for display
diffusion  nm^2/ps internally, m^2/s for display
=========  ===============================

LAMMPS ``units real`` uses Angstrom, kcal/mol, fs, atm. LAMMPS harmonic bond and angle
styles also drop the factor 1/2 that GROMACS keeps: ``E = K (r - r0)^2`` in LAMMPS
against ``E = k/2 (r - r0)^2`` in GROMACS, so ``K_lammps = k_gromacs / 2`` after the unit
change. OPLS Fourier dihedral coefficients have the same convention in both
(GROMACS dihedral type 5, LAMMPS ``dihedral_style opls``).
"""

from __future__ import annotations

import numpy as np

#: kJ per kcal (thermochemical calorie).
KJ_PER_KCAL = 4.184
#: Angstrom per nm.
ANGSTROM_PER_NM = 10.0
#: fs per ps.
FS_PER_PS = 1000.0
#: atm per bar.
ATM_PER_BAR = 1.0 / 1.01325
#: Boltzmann constant in kJ/(mol K).
KB_KJ_MOL_K = 0.0083144626
#: Boltzmann constant in J/K.
KB_J_K = 1.380649e-23
#: Avogadro's number, 1/mol.
AVOGADRO = 6.02214076e23
#: m^2/s per nm^2/ps.
M2_S_PER_NM2_PS = 1.0e-6
#: g/cm^3 per kg/m^3.
G_CM3_PER_KG_M3 = 1.0e-3


def kt_kj_mol(temperature_k: float) -> float:
    """Thermal energy k_B T in kJ/mol at ``temperature_k`` (K)."""
    return KB_KJ_MOL_K * temperature_k


# --- energies -------------------------------------------------------------------------


def kj_to_kcal(x):
    """kJ/mol -> kcal/mol."""
    return np.asarray(x) / KJ_PER_KCAL if isinstance(x, np.ndarray) else x / KJ_PER_KCAL


def kcal_to_kj(x):
    """kcal/mol -> kJ/mol."""
    return np.asarray(x) * KJ_PER_KCAL if isinstance(x, np.ndarray) else x * KJ_PER_KCAL


# --- lengths --------------------------------------------------------------------------


def nm_to_angstrom(x):
    """nm -> Angstrom."""
    return x * ANGSTROM_PER_NM


def angstrom_to_nm(x):
    """Angstrom -> nm."""
    return x / ANGSTROM_PER_NM


# --- forces (energy per length) ----------------------------------------------------------


def kj_mol_nm_to_kcal_mol_angstrom(x):
    """Force kJ/(mol nm) -> kcal/(mol Angstrom)."""
    return x / KJ_PER_KCAL / ANGSTROM_PER_NM


def kcal_mol_angstrom_to_kj_mol_nm(x):
    """Force kcal/(mol Angstrom) -> kJ/(mol nm)."""
    return x * KJ_PER_KCAL * ANGSTROM_PER_NM


# --- bonded force constants (GROMACS k/2 convention vs LAMMPS K) --------------------------


def bond_k_gromacs_to_lammps(k_kj_mol_nm2: float) -> float:
    """Harmonic bond constant: GROMACS k (kJ/mol/nm^2, E = k/2 dr^2) -> LAMMPS K
    (kcal/mol/Angstrom^2, E = K dr^2)."""
    return k_kj_mol_nm2 / KJ_PER_KCAL / ANGSTROM_PER_NM**2 / 2.0


def bond_k_lammps_to_gromacs(k_kcal_mol_a2: float) -> float:
    """Inverse of :func:`bond_k_gromacs_to_lammps`."""
    return k_kcal_mol_a2 * 2.0 * KJ_PER_KCAL * ANGSTROM_PER_NM**2


def angle_k_gromacs_to_lammps(k_kj_mol_rad2: float) -> float:
    """Harmonic angle constant: GROMACS k (kJ/mol/rad^2, E = k/2 dtheta^2) -> LAMMPS K
    (kcal/mol/rad^2, E = K dtheta^2)."""
    return k_kj_mol_rad2 / KJ_PER_KCAL / 2.0


def angle_k_lammps_to_gromacs(k_kcal_mol_rad2: float) -> float:
    """Inverse of :func:`angle_k_gromacs_to_lammps`."""
    return k_kcal_mol_rad2 * 2.0 * KJ_PER_KCAL


# --- pressure, time, transport -------------------------------------------------------------


def bar_to_atm(x):
    """bar -> atm."""
    return x * ATM_PER_BAR


def atm_to_bar(x):
    """atm -> bar."""
    return x / ATM_PER_BAR


def ps_to_fs(x):
    """ps -> fs."""
    return x * FS_PER_PS


def fs_to_ps(x):
    """fs -> ps."""
    return x / FS_PER_PS


def diffusion_nm2_ps_to_m2_s(x):
    """Diffusion coefficient nm^2/ps -> m^2/s."""
    return x * M2_S_PER_NM2_PS


def diffusion_angstrom2_fs_to_nm2_ps(x):
    """Diffusion coefficient Angstrom^2/fs -> nm^2/ps (1 A^2/fs = 10 nm^2/ps)."""
    return x / ANGSTROM_PER_NM**2 * FS_PER_PS


def density_kg_m3_to_g_cm3(x):
    """Density kg/m^3 -> g/cm^3."""
    return x * G_CM3_PER_KG_M3


def density_g_cm3_to_kg_m3(x):
    """Density g/cm^3 -> kg/m^3."""
    return x / G_CM3_PER_KG_M3


def number_density_nm3(density_kg_m3: float, molar_mass_g_mol: float) -> float:
    """Molecules per nm^3 at a mass density (kg/m^3) for a molar mass (g/mol)."""
    # kg/m^3 -> g/nm^3: 1 kg/m^3 = 1e3 g / 1e27 nm^3 = 1e-24 g/nm^3
    return density_kg_m3 * 1e-24 / molar_mass_g_mol * AVOGADRO


def mass_density_kg_m3(total_mass_g_mol, volume_nm3):
    """Mass density (kg/m^3) of ``total_mass_g_mol`` (g/mol, summed over the molecules
    in the box) in ``volume_nm3`` (nm^3); the inverse of :func:`number_density_nm3`."""
    # g/mol / N_A = g; g/nm^3 = 1e24 kg/m^3
    return total_mass_g_mol / AVOGADRO / volume_nm3 * 1e24


def kj_mol_nm3_to_bar(x):
    """Energy density kJ/(mol nm^3) -> pressure in bar (1 kJ/(mol nm^3) = 16.6054 bar)."""
    # 1e3 J / (N_A * 1e-27 m^3) in Pa, / 1e5 Pa per bar
    return x * (1e3 / (AVOGADRO * 1e-27) / 1e5)
