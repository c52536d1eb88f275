// hydra's sweep over MPI ranks (the hydra::mpi target): MPI's start and end,
// the placement of models on ranks, and the distributed sweep. Not part of
// hydra/hydra.hpp, so that only programs that use MPI need it.
#pragma once

#include "hydra/mpi/distributed_sweep.hpp"
#include "hydra/mpi/environment.hpp"
#include "hydra/mpi/rank_placement.hpp"
