/* The coordinate-wise family in one pass over the input (DESIGN §1): median,
 * trimmed mean, MeaMed (rules/coordinate.h defines them) and Bulyan's second
 * step, which reads its selected rows through an index list.
 *
 * Dispatch: n <= 8 or 64 < n <= 128, but MeaMed -> coord_network_kernel: a thread
 *   owns V consecutive coordinates (V = 4 for n <= 16, 2 for n <= 32, else
 *   1; one V-element load per row when every row is aligned to it), loads
 *   their n values (a warp reads consecutive coordinates of a row), turns
 *   them into order-preserving keys padded to the compile-time bucket
 *   N = 8, 16, 32, 64 or 128 (half below, half above the values), and runs
 *   a straight-line network in registers: Batcher's odd-even merge sort, or
 *   for the median the same pruned to the two middle ranks, which the
 *   padding keeps at N/2 - 1 and N/2 for every n. Every register index is a
 *   compile-time constant: ranks that depend on n, f or keep are picked by
 *   predicated selects, never by a runtime index (that would spill the
 *   array to local memory).
 * 8 < n <= 64, and MeaMed at n <= 64 -> coord_bitonic_kernel (run 2's: one
 *   coordinate a thread, full bitonic sort, top padding, runtime ranks).
 * n > 128 (MeaMed: n > 64), or the per-row counts -> coord_tile_kernel: a block
 *   stages a tile of coordinates in shared memory (or, beyond it, in the
 *   workspace), sorts each column with a block-wide bitonic network and
 *   reduces it with the very functions of rules/coordinate.h.
 * Both give the CPU's bits: keys sort into the same order, and the
 * reductions add the same values in the same order in double. */
#include <algorithm>

#include "launch.cuh"
#include "rules/coordinate.h"

namespace ragg_cuda {
namespace {

constexpr int kNetThreads = 128;
constexpr int kTileThreads = 256;
constexpr int kTileSmemBytes = 64 * 1024;

struct CoordArgs {
  int64_t n, d;
  const int64_t *idx;
  int rule;
  int64_t f, keep;
  ragg_dtype_t in_t, out_t;
  void *out;
};

/* ---- register networks ------------------------------------------------- */

/* Padding: of the N - n slots past the n values, the lower half take
 * kBottomKey (below every finite key, -Inf's too) and the rest kTopKey, so
 * the n values sit at ranks pb .. pb + n - 1 (pb = (N - n) / 2) and their
 * middle one(s) at the fixed ranks N/2 - 1 (odd n) or N/2 - 1 and N/2 (even
 * n): the median needs only those two ranks, a network pruned to them. */
constexpr int32_t kBottomKey = INT32_MIN;

template <int N>
__device__ __forceinline__ void net_sort(int32_t (&v)[N]);
template <int N>
__device__ __forceinline__ void net_mid(int32_t (&v)[N]);

#define CX(i, j)                                   \
  {                                                \
    const int32_t x_ = v[i], y_ = v[j];            \
    v[i] = min(x_, y_);                            \
    v[j] = max(x_, y_);                            \
  }
#define CN(i, j) v[i] = min(v[i], v[j]);
#define CM(i, j) v[j] = max(v[i], v[j]);
/* ---- generated networks: python3 kernels/gen_coord_networks.py ---- */
/* N = 8: 19 comparators */
template <> __device__ __forceinline__ void net_sort<8>(int32_t (&v)[8]) {
  CX(0,1) CX(2,3) CX(4,5) CX(6,7) CX(0,2) CX(1,3) CX(4,6) CX(5,7) CX(1,2) CX(5,6) CX(0,4) CX(1,5)
  CX(2,6) CX(3,7) CX(2,4) CX(3,5) CX(1,2) CX(3,4) CX(5,6)
}
/* N = 8: 17 comparators */
template <> __device__ __forceinline__ void net_mid<8>(int32_t (&v)[8]) {
  CX(0,1) CX(2,3) CX(4,5) CX(6,7) CX(0,2) CX(1,3) CX(4,6) CX(5,7) CX(1,2) CX(5,6) CM(0,4) CM(1,5)
  CN(2,6) CN(3,7) CM(2,4) CN(3,5) CX(3,4)
}
/* N = 128: 1471 comparators */
template <> __device__ __forceinline__ void net_sort<128>(int32_t (&v)[128]) {
  CX(0,1) CX(2,3) CX(4,5) CX(6,7) CX(8,9) CX(10,11) CX(12,13) CX(14,15) CX(16,17) CX(18,19)
  CX(20,21) CX(22,23) CX(24,25) CX(26,27) CX(28,29) CX(30,31) CX(32,33) CX(34,35) CX(36,37)
  CX(38,39) CX(40,41) CX(42,43) CX(44,45) CX(46,47) CX(48,49) CX(50,51) CX(52,53) CX(54,55)
  CX(56,57) CX(58,59) CX(60,61) CX(62,63) CX(64,65) CX(66,67) CX(68,69) CX(70,71) CX(72,73)
  CX(74,75) CX(76,77) CX(78,79) CX(80,81) CX(82,83) CX(84,85) CX(86,87) CX(88,89) CX(90,91)
  CX(92,93) CX(94,95) CX(96,97) CX(98,99) CX(100,101) CX(102,103) CX(104,105) CX(106,107)
  CX(108,109) CX(110,111) CX(112,113) CX(114,115) CX(116,117) CX(118,119) CX(120,121) CX(122,123)
  CX(124,125) CX(126,127) CX(0,2) CX(1,3) CX(4,6) CX(5,7) CX(8,10) CX(9,11) CX(12,14) CX(13,15)
  CX(16,18) CX(17,19) CX(20,22) CX(21,23) CX(24,26) CX(25,27) CX(28,30) CX(29,31) CX(32,34)
  CX(33,35) CX(36,38) CX(37,39) CX(40,42) CX(41,43) CX(44,46) CX(45,47) CX(48,50) CX(49,51)
  CX(52,54) CX(53,55) CX(56,58) CX(57,59) CX(60,62) CX(61,63) CX(64,66) CX(65,67) CX(68,70)
  CX(69,71) CX(72,74) CX(73,75) CX(76,78) CX(77,79) CX(80,82) CX(81,83) CX(84,86) CX(85,87)
  CX(88,90) CX(89,91) CX(92,94) CX(93,95) CX(96,98) CX(97,99) CX(100,102) CX(101,103) CX(104,106)
  CX(105,107) CX(108,110) CX(109,111) CX(112,114) CX(113,115) CX(116,118) CX(117,119) CX(120,122)
  CX(121,123) CX(124,126) CX(125,127) CX(1,2) CX(5,6) CX(9,10) CX(13,14) CX(17,18) CX(21,22)
  CX(25,26) CX(29,30) CX(33,34) CX(37,38) CX(41,42) CX(45,46) CX(49,50) CX(53,54) CX(57,58)
  CX(61,62) CX(65,66) CX(69,70) CX(73,74) CX(77,78) CX(81,82) CX(85,86) CX(89,90) CX(93,94)
  CX(97,98) CX(101,102) CX(105,106) CX(109,110) CX(113,114) CX(117,118) CX(121,122) CX(125,126)
  CX(0,4) CX(1,5) CX(2,6) CX(3,7) CX(8,12) CX(9,13) CX(10,14) CX(11,15) CX(16,20) CX(17,21)
  CX(18,22) CX(19,23) CX(24,28) CX(25,29) CX(26,30) CX(27,31) CX(32,36) CX(33,37) CX(34,38)
  CX(35,39) CX(40,44) CX(41,45) CX(42,46) CX(43,47) CX(48,52) CX(49,53) CX(50,54) CX(51,55)
  CX(56,60) CX(57,61) CX(58,62) CX(59,63) CX(64,68) CX(65,69) CX(66,70) CX(67,71) CX(72,76)
  CX(73,77) CX(74,78) CX(75,79) CX(80,84) CX(81,85) CX(82,86) CX(83,87) CX(88,92) CX(89,93)
  CX(90,94) CX(91,95) CX(96,100) CX(97,101) CX(98,102) CX(99,103) CX(104,108) CX(105,109)
  CX(106,110) CX(107,111) CX(112,116) CX(113,117) CX(114,118) CX(115,119) CX(120,124) CX(121,125)
  CX(122,126) CX(123,127) CX(2,4) CX(3,5) CX(10,12) CX(11,13) CX(18,20) CX(19,21) CX(26,28)
  CX(27,29) CX(34,36) CX(35,37) CX(42,44) CX(43,45) CX(50,52) CX(51,53) CX(58,60) CX(59,61)
  CX(66,68) CX(67,69) CX(74,76) CX(75,77) CX(82,84) CX(83,85) CX(90,92) CX(91,93) CX(98,100)
  CX(99,101) CX(106,108) CX(107,109) CX(114,116) CX(115,117) CX(122,124) CX(123,125) CX(1,2)
  CX(3,4) CX(5,6) CX(9,10) CX(11,12) CX(13,14) CX(17,18) CX(19,20) CX(21,22) CX(25,26) CX(27,28)
  CX(29,30) CX(33,34) CX(35,36) CX(37,38) CX(41,42) CX(43,44) CX(45,46) CX(49,50) CX(51,52)
  CX(53,54) CX(57,58) CX(59,60) CX(61,62) CX(65,66) CX(67,68) CX(69,70) CX(73,74) CX(75,76)
  CX(77,78) CX(81,82) CX(83,84) CX(85,86) CX(89,90) CX(91,92) CX(93,94) CX(97,98) CX(99,100)
  CX(101,102) CX(105,106) CX(107,108) CX(109,110) CX(113,114) CX(115,116) CX(117,118) CX(121,122)
  CX(123,124) CX(125,126) CX(0,8) CX(1,9) CX(2,10) CX(3,11) CX(4,12) CX(5,13) CX(6,14) CX(7,15)
  CX(16,24) CX(17,25) CX(18,26) CX(19,27) CX(20,28) CX(21,29) CX(22,30) CX(23,31) CX(32,40)
  CX(33,41) CX(34,42) CX(35,43) CX(36,44) CX(37,45) CX(38,46) CX(39,47) CX(48,56) CX(49,57)
  CX(50,58) CX(51,59) CX(52,60) CX(53,61) CX(54,62) CX(55,63) CX(64,72) CX(65,73) CX(66,74)
  CX(67,75) CX(68,76) CX(69,77) CX(70,78) CX(71,79) CX(80,88) CX(81,89) CX(82,90) CX(83,91)
  CX(84,92) CX(85,93) CX(86,94) CX(87,95) CX(96,104) CX(97,105) CX(98,106) CX(99,107) CX(100,108)
  CX(101,109) CX(102,110) CX(103,111) CX(112,120) CX(113,121) CX(114,122) CX(115,123) CX(116,124)
  CX(117,125) CX(118,126) CX(119,127) CX(4,8) CX(5,9) CX(6,10) CX(7,11) CX(20,24) CX(21,25)
  CX(22,26) CX(23,27) CX(36,40) CX(37,41) CX(38,42) CX(39,43) CX(52,56) CX(53,57) CX(54,58)
  CX(55,59) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(84,88) CX(85,89) CX(86,90) CX(87,91)
  CX(100,104) CX(101,105) CX(102,106) CX(103,107) CX(116,120) CX(117,121) CX(118,122) CX(119,123)
  CX(2,4) CX(3,5) CX(6,8) CX(7,9) CX(10,12) CX(11,13) CX(18,20) CX(19,21) CX(22,24) CX(23,25)
  CX(26,28) CX(27,29) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44) CX(43,45) CX(50,52)
  CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61) CX(66,68) CX(67,69) CX(70,72) CX(71,73)
  CX(74,76) CX(75,77) CX(82,84) CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(98,100)
  CX(99,101) CX(102,104) CX(103,105) CX(106,108) CX(107,109) CX(114,116) CX(115,117) CX(118,120)
  CX(119,121) CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8) CX(9,10) CX(11,12) CX(13,14)
  CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26) CX(27,28) CX(29,30) CX(33,34) CX(35,36)
  CX(37,38) CX(39,40) CX(41,42) CX(43,44) CX(45,46) CX(49,50) CX(51,52) CX(53,54) CX(55,56)
  CX(57,58) CX(59,60) CX(61,62) CX(65,66) CX(67,68) CX(69,70) CX(71,72) CX(73,74) CX(75,76)
  CX(77,78) CX(81,82) CX(83,84) CX(85,86) CX(87,88) CX(89,90) CX(91,92) CX(93,94) CX(97,98)
  CX(99,100) CX(101,102) CX(103,104) CX(105,106) CX(107,108) CX(109,110) CX(113,114) CX(115,116)
  CX(117,118) CX(119,120) CX(121,122) CX(123,124) CX(125,126) CX(0,16) CX(1,17) CX(2,18) CX(3,19)
  CX(4,20) CX(5,21) CX(6,22) CX(7,23) CX(8,24) CX(9,25) CX(10,26) CX(11,27) CX(12,28) CX(13,29)
  CX(14,30) CX(15,31) CX(32,48) CX(33,49) CX(34,50) CX(35,51) CX(36,52) CX(37,53) CX(38,54)
  CX(39,55) CX(40,56) CX(41,57) CX(42,58) CX(43,59) CX(44,60) CX(45,61) CX(46,62) CX(47,63)
  CX(64,80) CX(65,81) CX(66,82) CX(67,83) CX(68,84) CX(69,85) CX(70,86) CX(71,87) CX(72,88)
  CX(73,89) CX(74,90) CX(75,91) CX(76,92) CX(77,93) CX(78,94) CX(79,95) CX(96,112) CX(97,113)
  CX(98,114) CX(99,115) CX(100,116) CX(101,117) CX(102,118) CX(103,119) CX(104,120) CX(105,121)
  CX(106,122) CX(107,123) CX(108,124) CX(109,125) CX(110,126) CX(111,127) CX(8,16) CX(9,17)
  CX(10,18) CX(11,19) CX(12,20) CX(13,21) CX(14,22) CX(15,23) CX(40,48) CX(41,49) CX(42,50)
  CX(43,51) CX(44,52) CX(45,53) CX(46,54) CX(47,55) CX(72,80) CX(73,81) CX(74,82) CX(75,83)
  CX(76,84) CX(77,85) CX(78,86) CX(79,87) CX(104,112) CX(105,113) CX(106,114) CX(107,115)
  CX(108,116) CX(109,117) CX(110,118) CX(111,119) CX(4,8) CX(5,9) CX(6,10) CX(7,11) CX(12,16)
  CX(13,17) CX(14,18) CX(15,19) CX(20,24) CX(21,25) CX(22,26) CX(23,27) CX(36,40) CX(37,41)
  CX(38,42) CX(39,43) CX(44,48) CX(45,49) CX(46,50) CX(47,51) CX(52,56) CX(53,57) CX(54,58)
  CX(55,59) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(76,80) CX(77,81) CX(78,82) CX(79,83)
  CX(84,88) CX(85,89) CX(86,90) CX(87,91) CX(100,104) CX(101,105) CX(102,106) CX(103,107)
  CX(108,112) CX(109,113) CX(110,114) CX(111,115) CX(116,120) CX(117,121) CX(118,122) CX(119,123)
  CX(2,4) CX(3,5) CX(6,8) CX(7,9) CX(10,12) CX(11,13) CX(14,16) CX(15,17) CX(18,20) CX(19,21)
  CX(22,24) CX(23,25) CX(26,28) CX(27,29) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44)
  CX(43,45) CX(46,48) CX(47,49) CX(50,52) CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61)
  CX(66,68) CX(67,69) CX(70,72) CX(71,73) CX(74,76) CX(75,77) CX(78,80) CX(79,81) CX(82,84)
  CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(98,100) CX(99,101) CX(102,104) CX(103,105)
  CX(106,108) CX(107,109) CX(110,112) CX(111,113) CX(114,116) CX(115,117) CX(118,120) CX(119,121)
  CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8) CX(9,10) CX(11,12) CX(13,14) CX(15,16)
  CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26) CX(27,28) CX(29,30) CX(33,34) CX(35,36)
  CX(37,38) CX(39,40) CX(41,42) CX(43,44) CX(45,46) CX(47,48) CX(49,50) CX(51,52) CX(53,54)
  CX(55,56) CX(57,58) CX(59,60) CX(61,62) CX(65,66) CX(67,68) CX(69,70) CX(71,72) CX(73,74)
  CX(75,76) CX(77,78) CX(79,80) CX(81,82) CX(83,84) CX(85,86) CX(87,88) CX(89,90) CX(91,92)
  CX(93,94) CX(97,98) CX(99,100) CX(101,102) CX(103,104) CX(105,106) CX(107,108) CX(109,110)
  CX(111,112) CX(113,114) CX(115,116) CX(117,118) CX(119,120) CX(121,122) CX(123,124) CX(125,126)
  CX(0,32) CX(1,33) CX(2,34) CX(3,35) CX(4,36) CX(5,37) CX(6,38) CX(7,39) CX(8,40) CX(9,41)
  CX(10,42) CX(11,43) CX(12,44) CX(13,45) CX(14,46) CX(15,47) CX(16,48) CX(17,49) CX(18,50)
  CX(19,51) CX(20,52) CX(21,53) CX(22,54) CX(23,55) CX(24,56) CX(25,57) CX(26,58) CX(27,59)
  CX(28,60) CX(29,61) CX(30,62) CX(31,63) CX(64,96) CX(65,97) CX(66,98) CX(67,99) CX(68,100)
  CX(69,101) CX(70,102) CX(71,103) CX(72,104) CX(73,105) CX(74,106) CX(75,107) CX(76,108)
  CX(77,109) CX(78,110) CX(79,111) CX(80,112) CX(81,113) CX(82,114) CX(83,115) CX(84,116)
  CX(85,117) CX(86,118) CX(87,119) CX(88,120) CX(89,121) CX(90,122) CX(91,123) CX(92,124)
  CX(93,125) CX(94,126) CX(95,127) CX(16,32) CX(17,33) CX(18,34) CX(19,35) CX(20,36) CX(21,37)
  CX(22,38) CX(23,39) CX(24,40) CX(25,41) CX(26,42) CX(27,43) CX(28,44) CX(29,45) CX(30,46)
  CX(31,47) CX(80,96) CX(81,97) CX(82,98) CX(83,99) CX(84,100) CX(85,101) CX(86,102) CX(87,103)
  CX(88,104) CX(89,105) CX(90,106) CX(91,107) CX(92,108) CX(93,109) CX(94,110) CX(95,111) CX(8,16)
  CX(9,17) CX(10,18) CX(11,19) CX(12,20) CX(13,21) CX(14,22) CX(15,23) CX(24,32) CX(25,33)
  CX(26,34) CX(27,35) CX(28,36) CX(29,37) CX(30,38) CX(31,39) CX(40,48) CX(41,49) CX(42,50)
  CX(43,51) CX(44,52) CX(45,53) CX(46,54) CX(47,55) CX(72,80) CX(73,81) CX(74,82) CX(75,83)
  CX(76,84) CX(77,85) CX(78,86) CX(79,87) CX(88,96) CX(89,97) CX(90,98) CX(91,99) CX(92,100)
  CX(93,101) CX(94,102) CX(95,103) CX(104,112) CX(105,113) CX(106,114) CX(107,115) CX(108,116)
  CX(109,117) CX(110,118) CX(111,119) CX(4,8) CX(5,9) CX(6,10) CX(7,11) CX(12,16) CX(13,17)
  CX(14,18) CX(15,19) CX(20,24) CX(21,25) CX(22,26) CX(23,27) CX(28,32) CX(29,33) CX(30,34)
  CX(31,35) CX(36,40) CX(37,41) CX(38,42) CX(39,43) CX(44,48) CX(45,49) CX(46,50) CX(47,51)
  CX(52,56) CX(53,57) CX(54,58) CX(55,59) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(76,80)
  CX(77,81) CX(78,82) CX(79,83) CX(84,88) CX(85,89) CX(86,90) CX(87,91) CX(92,96) CX(93,97)
  CX(94,98) CX(95,99) CX(100,104) CX(101,105) CX(102,106) CX(103,107) CX(108,112) CX(109,113)
  CX(110,114) CX(111,115) CX(116,120) CX(117,121) CX(118,122) CX(119,123) CX(2,4) CX(3,5) CX(6,8)
  CX(7,9) CX(10,12) CX(11,13) CX(14,16) CX(15,17) CX(18,20) CX(19,21) CX(22,24) CX(23,25)
  CX(26,28) CX(27,29) CX(30,32) CX(31,33) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44)
  CX(43,45) CX(46,48) CX(47,49) CX(50,52) CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61)
  CX(66,68) CX(67,69) CX(70,72) CX(71,73) CX(74,76) CX(75,77) CX(78,80) CX(79,81) CX(82,84)
  CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(94,96) CX(95,97) CX(98,100) CX(99,101)
  CX(102,104) CX(103,105) CX(106,108) CX(107,109) CX(110,112) CX(111,113) CX(114,116) CX(115,117)
  CX(118,120) CX(119,121) CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8) CX(9,10)
  CX(11,12) CX(13,14) CX(15,16) CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26) CX(27,28)
  CX(29,30) CX(31,32) CX(33,34) CX(35,36) CX(37,38) CX(39,40) CX(41,42) CX(43,44) CX(45,46)
  CX(47,48) CX(49,50) CX(51,52) CX(53,54) CX(55,56) CX(57,58) CX(59,60) CX(61,62) CX(65,66)
  CX(67,68) CX(69,70) CX(71,72) CX(73,74) CX(75,76) CX(77,78) CX(79,80) CX(81,82) CX(83,84)
  CX(85,86) CX(87,88) CX(89,90) CX(91,92) CX(93,94) CX(95,96) CX(97,98) CX(99,100) CX(101,102)
  CX(103,104) CX(105,106) CX(107,108) CX(109,110) CX(111,112) CX(113,114) CX(115,116) CX(117,118)
  CX(119,120) CX(121,122) CX(123,124) CX(125,126) CX(0,64) CX(1,65) CX(2,66) CX(3,67) CX(4,68)
  CX(5,69) CX(6,70) CX(7,71) CX(8,72) CX(9,73) CX(10,74) CX(11,75) CX(12,76) CX(13,77) CX(14,78)
  CX(15,79) CX(16,80) CX(17,81) CX(18,82) CX(19,83) CX(20,84) CX(21,85) CX(22,86) CX(23,87)
  CX(24,88) CX(25,89) CX(26,90) CX(27,91) CX(28,92) CX(29,93) CX(30,94) CX(31,95) CX(32,96)
  CX(33,97) CX(34,98) CX(35,99) CX(36,100) CX(37,101) CX(38,102) CX(39,103) CX(40,104) CX(41,105)
  CX(42,106) CX(43,107) CX(44,108) CX(45,109) CX(46,110) CX(47,111) CX(48,112) CX(49,113)
  CX(50,114) CX(51,115) CX(52,116) CX(53,117) CX(54,118) CX(55,119) CX(56,120) CX(57,121)
  CX(58,122) CX(59,123) CX(60,124) CX(61,125) CX(62,126) CX(63,127) CX(32,64) CX(33,65) CX(34,66)
  CX(35,67) CX(36,68) CX(37,69) CX(38,70) CX(39,71) CX(40,72) CX(41,73) CX(42,74) CX(43,75)
  CX(44,76) CX(45,77) CX(46,78) CX(47,79) CX(48,80) CX(49,81) CX(50,82) CX(51,83) CX(52,84)
  CX(53,85) CX(54,86) CX(55,87) CX(56,88) CX(57,89) CX(58,90) CX(59,91) CX(60,92) CX(61,93)
  CX(62,94) CX(63,95) CX(16,32) CX(17,33) CX(18,34) CX(19,35) CX(20,36) CX(21,37) CX(22,38)
  CX(23,39) CX(24,40) CX(25,41) CX(26,42) CX(27,43) CX(28,44) CX(29,45) CX(30,46) CX(31,47)
  CX(48,64) CX(49,65) CX(50,66) CX(51,67) CX(52,68) CX(53,69) CX(54,70) CX(55,71) CX(56,72)
  CX(57,73) CX(58,74) CX(59,75) CX(60,76) CX(61,77) CX(62,78) CX(63,79) CX(80,96) CX(81,97)
  CX(82,98) CX(83,99) CX(84,100) CX(85,101) CX(86,102) CX(87,103) CX(88,104) CX(89,105) CX(90,106)
  CX(91,107) CX(92,108) CX(93,109) CX(94,110) CX(95,111) CX(8,16) CX(9,17) CX(10,18) CX(11,19)
  CX(12,20) CX(13,21) CX(14,22) CX(15,23) CX(24,32) CX(25,33) CX(26,34) CX(27,35) CX(28,36)
  CX(29,37) CX(30,38) CX(31,39) CX(40,48) CX(41,49) CX(42,50) CX(43,51) CX(44,52) CX(45,53)
  CX(46,54) CX(47,55) CX(56,64) CX(57,65) CX(58,66) CX(59,67) CX(60,68) CX(61,69) CX(62,70)
  CX(63,71) CX(72,80) CX(73,81) CX(74,82) CX(75,83) CX(76,84) CX(77,85) CX(78,86) CX(79,87)
  CX(88,96) CX(89,97) CX(90,98) CX(91,99) CX(92,100) CX(93,101) CX(94,102) CX(95,103) CX(104,112)
  CX(105,113) CX(106,114) CX(107,115) CX(108,116) CX(109,117) CX(110,118) CX(111,119) CX(4,8)
  CX(5,9) CX(6,10) CX(7,11) CX(12,16) CX(13,17) CX(14,18) CX(15,19) CX(20,24) CX(21,25) CX(22,26)
  CX(23,27) CX(28,32) CX(29,33) CX(30,34) CX(31,35) CX(36,40) CX(37,41) CX(38,42) CX(39,43)
  CX(44,48) CX(45,49) CX(46,50) CX(47,51) CX(52,56) CX(53,57) CX(54,58) CX(55,59) CX(60,64)
  CX(61,65) CX(62,66) CX(63,67) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(76,80) CX(77,81)
  CX(78,82) CX(79,83) CX(84,88) CX(85,89) CX(86,90) CX(87,91) CX(92,96) CX(93,97) CX(94,98)
  CX(95,99) CX(100,104) CX(101,105) CX(102,106) CX(103,107) CX(108,112) CX(109,113) CX(110,114)
  CX(111,115) CX(116,120) CX(117,121) CX(118,122) CX(119,123) CX(2,4) CX(3,5) CX(6,8) CX(7,9)
  CX(10,12) CX(11,13) CX(14,16) CX(15,17) CX(18,20) CX(19,21) CX(22,24) CX(23,25) CX(26,28)
  CX(27,29) CX(30,32) CX(31,33) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44) CX(43,45)
  CX(46,48) CX(47,49) CX(50,52) CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61) CX(62,64)
  CX(63,65) CX(66,68) CX(67,69) CX(70,72) CX(71,73) CX(74,76) CX(75,77) CX(78,80) CX(79,81)
  CX(82,84) CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(94,96) CX(95,97) CX(98,100)
  CX(99,101) CX(102,104) CX(103,105) CX(106,108) CX(107,109) CX(110,112) CX(111,113) CX(114,116)
  CX(115,117) CX(118,120) CX(119,121) CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8)
  CX(9,10) CX(11,12) CX(13,14) CX(15,16) CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26)
  CX(27,28) CX(29,30) CX(31,32) CX(33,34) CX(35,36) CX(37,38) CX(39,40) CX(41,42) CX(43,44)
  CX(45,46) CX(47,48) CX(49,50) CX(51,52) CX(53,54) CX(55,56) CX(57,58) CX(59,60) CX(61,62)
  CX(63,64) CX(65,66) CX(67,68) CX(69,70) CX(71,72) CX(73,74) CX(75,76) CX(77,78) CX(79,80)
  CX(81,82) CX(83,84) CX(85,86) CX(87,88) CX(89,90) CX(91,92) CX(93,94) CX(95,96) CX(97,98)
  CX(99,100) CX(101,102) CX(103,104) CX(105,106) CX(107,108) CX(109,110) CX(111,112) CX(113,114)
  CX(115,116) CX(117,118) CX(119,120) CX(121,122) CX(123,124) CX(125,126)
}
/* N = 128: 1213 comparators */
template <> __device__ __forceinline__ void net_mid<128>(int32_t (&v)[128]) {
  CX(0,1) CX(2,3) CX(4,5) CX(6,7) CX(8,9) CX(10,11) CX(12,13) CX(14,15) CX(16,17) CX(18,19)
  CX(20,21) CX(22,23) CX(24,25) CX(26,27) CX(28,29) CX(30,31) CX(32,33) CX(34,35) CX(36,37)
  CX(38,39) CX(40,41) CX(42,43) CX(44,45) CX(46,47) CX(48,49) CX(50,51) CX(52,53) CX(54,55)
  CX(56,57) CX(58,59) CX(60,61) CX(62,63) CX(64,65) CX(66,67) CX(68,69) CX(70,71) CX(72,73)
  CX(74,75) CX(76,77) CX(78,79) CX(80,81) CX(82,83) CX(84,85) CX(86,87) CX(88,89) CX(90,91)
  CX(92,93) CX(94,95) CX(96,97) CX(98,99) CX(100,101) CX(102,103) CX(104,105) CX(106,107)
  CX(108,109) CX(110,111) CX(112,113) CX(114,115) CX(116,117) CX(118,119) CX(120,121) CX(122,123)
  CX(124,125) CX(126,127) CX(0,2) CX(1,3) CX(4,6) CX(5,7) CX(8,10) CX(9,11) CX(12,14) CX(13,15)
  CX(16,18) CX(17,19) CX(20,22) CX(21,23) CX(24,26) CX(25,27) CX(28,30) CX(29,31) CX(32,34)
  CX(33,35) CX(36,38) CX(37,39) CX(40,42) CX(41,43) CX(44,46) CX(45,47) CX(48,50) CX(49,51)
  CX(52,54) CX(53,55) CX(56,58) CX(57,59) CX(60,62) CX(61,63) CX(64,66) CX(65,67) CX(68,70)
  CX(69,71) CX(72,74) CX(73,75) CX(76,78) CX(77,79) CX(80,82) CX(81,83) CX(84,86) CX(85,87)
  CX(88,90) CX(89,91) CX(92,94) CX(93,95) CX(96,98) CX(97,99) CX(100,102) CX(101,103) CX(104,106)
  CX(105,107) CX(108,110) CX(109,111) CX(112,114) CX(113,115) CX(116,118) CX(117,119) CX(120,122)
  CX(121,123) CX(124,126) CX(125,127) CX(1,2) CX(5,6) CX(9,10) CX(13,14) CX(17,18) CX(21,22)
  CX(25,26) CX(29,30) CX(33,34) CX(37,38) CX(41,42) CX(45,46) CX(49,50) CX(53,54) CX(57,58)
  CX(61,62) CX(65,66) CX(69,70) CX(73,74) CX(77,78) CX(81,82) CX(85,86) CX(89,90) CX(93,94)
  CX(97,98) CX(101,102) CX(105,106) CX(109,110) CX(113,114) CX(117,118) CX(121,122) CX(125,126)
  CX(0,4) CX(1,5) CX(2,6) CX(3,7) CX(8,12) CX(9,13) CX(10,14) CX(11,15) CX(16,20) CX(17,21)
  CX(18,22) CX(19,23) CX(24,28) CX(25,29) CX(26,30) CX(27,31) CX(32,36) CX(33,37) CX(34,38)
  CX(35,39) CX(40,44) CX(41,45) CX(42,46) CX(43,47) CX(48,52) CX(49,53) CX(50,54) CX(51,55)
  CX(56,60) CX(57,61) CX(58,62) CX(59,63) CX(64,68) CX(65,69) CX(66,70) CX(67,71) CX(72,76)
  CX(73,77) CX(74,78) CX(75,79) CX(80,84) CX(81,85) CX(82,86) CX(83,87) CX(88,92) CX(89,93)
  CX(90,94) CX(91,95) CX(96,100) CX(97,101) CX(98,102) CX(99,103) CX(104,108) CX(105,109)
  CX(106,110) CX(107,111) CX(112,116) CX(113,117) CX(114,118) CX(115,119) CX(120,124) CX(121,125)
  CX(122,126) CX(123,127) CX(2,4) CX(3,5) CX(10,12) CX(11,13) CX(18,20) CX(19,21) CX(26,28)
  CX(27,29) CX(34,36) CX(35,37) CX(42,44) CX(43,45) CX(50,52) CX(51,53) CX(58,60) CX(59,61)
  CX(66,68) CX(67,69) CX(74,76) CX(75,77) CX(82,84) CX(83,85) CX(90,92) CX(91,93) CX(98,100)
  CX(99,101) CX(106,108) CX(107,109) CX(114,116) CX(115,117) CX(122,124) CX(123,125) CX(1,2)
  CX(3,4) CX(5,6) CX(9,10) CX(11,12) CX(13,14) CX(17,18) CX(19,20) CX(21,22) CX(25,26) CX(27,28)
  CX(29,30) CX(33,34) CX(35,36) CX(37,38) CX(41,42) CX(43,44) CX(45,46) CX(49,50) CX(51,52)
  CX(53,54) CX(57,58) CX(59,60) CX(61,62) CX(65,66) CX(67,68) CX(69,70) CX(73,74) CX(75,76)
  CX(77,78) CX(81,82) CX(83,84) CX(85,86) CX(89,90) CX(91,92) CX(93,94) CX(97,98) CX(99,100)
  CX(101,102) CX(105,106) CX(107,108) CX(109,110) CX(113,114) CX(115,116) CX(117,118) CX(121,122)
  CX(123,124) CX(125,126) CX(0,8) CX(1,9) CX(2,10) CX(3,11) CX(4,12) CX(5,13) CX(6,14) CX(7,15)
  CX(16,24) CX(17,25) CX(18,26) CX(19,27) CX(20,28) CX(21,29) CX(22,30) CX(23,31) CX(32,40)
  CX(33,41) CX(34,42) CX(35,43) CX(36,44) CX(37,45) CX(38,46) CX(39,47) CX(48,56) CX(49,57)
  CX(50,58) CX(51,59) CX(52,60) CX(53,61) CX(54,62) CX(55,63) CX(64,72) CX(65,73) CX(66,74)
  CX(67,75) CX(68,76) CX(69,77) CX(70,78) CX(71,79) CX(80,88) CX(81,89) CX(82,90) CX(83,91)
  CX(84,92) CX(85,93) CX(86,94) CX(87,95) CX(96,104) CX(97,105) CX(98,106) CX(99,107) CX(100,108)
  CX(101,109) CX(102,110) CX(103,111) CX(112,120) CX(113,121) CX(114,122) CX(115,123) CX(116,124)
  CX(117,125) CX(118,126) CX(119,127) CX(4,8) CX(5,9) CX(6,10) CX(7,11) CX(20,24) CX(21,25)
  CX(22,26) CX(23,27) CX(36,40) CX(37,41) CX(38,42) CX(39,43) CX(52,56) CX(53,57) CX(54,58)
  CX(55,59) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(84,88) CX(85,89) CX(86,90) CX(87,91)
  CX(100,104) CX(101,105) CX(102,106) CX(103,107) CX(116,120) CX(117,121) CX(118,122) CX(119,123)
  CX(2,4) CX(3,5) CX(6,8) CX(7,9) CX(10,12) CX(11,13) CX(18,20) CX(19,21) CX(22,24) CX(23,25)
  CX(26,28) CX(27,29) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44) CX(43,45) CX(50,52)
  CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61) CX(66,68) CX(67,69) CX(70,72) CX(71,73)
  CX(74,76) CX(75,77) CX(82,84) CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(98,100)
  CX(99,101) CX(102,104) CX(103,105) CX(106,108) CX(107,109) CX(114,116) CX(115,117) CX(118,120)
  CX(119,121) CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8) CX(9,10) CX(11,12) CX(13,14)
  CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26) CX(27,28) CX(29,30) CX(33,34) CX(35,36)
  CX(37,38) CX(39,40) CX(41,42) CX(43,44) CX(45,46) CX(49,50) CX(51,52) CX(53,54) CX(55,56)
  CX(57,58) CX(59,60) CX(61,62) CX(65,66) CX(67,68) CX(69,70) CX(71,72) CX(73,74) CX(75,76)
  CX(77,78) CX(81,82) CX(83,84) CX(85,86) CX(87,88) CX(89,90) CX(91,92) CX(93,94) CX(97,98)
  CX(99,100) CX(101,102) CX(103,104) CX(105,106) CX(107,108) CX(109,110) CX(113,114) CX(115,116)
  CX(117,118) CX(119,120) CX(121,122) CX(123,124) CX(125,126) CX(0,16) CX(1,17) CX(2,18) CX(3,19)
  CX(4,20) CX(5,21) CX(6,22) CX(7,23) CX(8,24) CX(9,25) CX(10,26) CX(11,27) CX(12,28) CX(13,29)
  CX(14,30) CX(15,31) CX(32,48) CX(33,49) CX(34,50) CX(35,51) CX(36,52) CX(37,53) CX(38,54)
  CX(39,55) CX(40,56) CX(41,57) CX(42,58) CX(43,59) CX(44,60) CX(45,61) CX(46,62) CX(47,63)
  CX(64,80) CX(65,81) CX(66,82) CX(67,83) CX(68,84) CX(69,85) CX(70,86) CX(71,87) CX(72,88)
  CX(73,89) CX(74,90) CX(75,91) CX(76,92) CX(77,93) CX(78,94) CX(79,95) CX(96,112) CX(97,113)
  CX(98,114) CX(99,115) CX(100,116) CX(101,117) CX(102,118) CX(103,119) CX(104,120) CX(105,121)
  CX(106,122) CX(107,123) CX(108,124) CX(109,125) CX(110,126) CX(111,127) CX(8,16) CX(9,17)
  CX(10,18) CX(11,19) CX(12,20) CX(13,21) CX(14,22) CX(15,23) CX(40,48) CX(41,49) CX(42,50)
  CX(43,51) CX(44,52) CX(45,53) CX(46,54) CX(47,55) CX(72,80) CX(73,81) CX(74,82) CX(75,83)
  CX(76,84) CX(77,85) CX(78,86) CX(79,87) CX(104,112) CX(105,113) CX(106,114) CX(107,115)
  CX(108,116) CX(109,117) CX(110,118) CX(111,119) CX(4,8) CX(5,9) CX(6,10) CX(7,11) CX(12,16)
  CX(13,17) CX(14,18) CX(15,19) CX(20,24) CX(21,25) CX(22,26) CX(23,27) CX(36,40) CX(37,41)
  CX(38,42) CX(39,43) CX(44,48) CX(45,49) CX(46,50) CX(47,51) CX(52,56) CX(53,57) CX(54,58)
  CX(55,59) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(76,80) CX(77,81) CX(78,82) CX(79,83)
  CX(84,88) CX(85,89) CX(86,90) CX(87,91) CX(100,104) CX(101,105) CX(102,106) CX(103,107)
  CX(108,112) CX(109,113) CX(110,114) CX(111,115) CX(116,120) CX(117,121) CX(118,122) CX(119,123)
  CX(2,4) CX(3,5) CX(6,8) CX(7,9) CX(10,12) CX(11,13) CX(14,16) CX(15,17) CX(18,20) CX(19,21)
  CX(22,24) CX(23,25) CX(26,28) CX(27,29) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44)
  CX(43,45) CX(46,48) CX(47,49) CX(50,52) CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61)
  CX(66,68) CX(67,69) CX(70,72) CX(71,73) CX(74,76) CX(75,77) CX(78,80) CX(79,81) CX(82,84)
  CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(98,100) CX(99,101) CX(102,104) CX(103,105)
  CX(106,108) CX(107,109) CX(110,112) CX(111,113) CX(114,116) CX(115,117) CX(118,120) CX(119,121)
  CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8) CX(9,10) CX(11,12) CX(13,14) CX(15,16)
  CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26) CX(27,28) CX(29,30) CX(33,34) CX(35,36)
  CX(37,38) CX(39,40) CX(41,42) CX(43,44) CX(45,46) CX(47,48) CX(49,50) CX(51,52) CX(53,54)
  CX(55,56) CX(57,58) CX(59,60) CX(61,62) CX(65,66) CX(67,68) CX(69,70) CX(71,72) CX(73,74)
  CX(75,76) CX(77,78) CX(79,80) CX(81,82) CX(83,84) CX(85,86) CX(87,88) CX(89,90) CX(91,92)
  CX(93,94) CX(97,98) CX(99,100) CX(101,102) CX(103,104) CX(105,106) CX(107,108) CX(109,110)
  CX(111,112) CX(113,114) CX(115,116) CX(117,118) CX(119,120) CX(121,122) CX(123,124) CX(125,126)
  CX(0,32) CX(1,33) CX(2,34) CX(3,35) CX(4,36) CX(5,37) CX(6,38) CX(7,39) CX(8,40) CX(9,41)
  CX(10,42) CX(11,43) CX(12,44) CX(13,45) CX(14,46) CX(15,47) CX(16,48) CX(17,49) CX(18,50)
  CX(19,51) CX(20,52) CX(21,53) CX(22,54) CX(23,55) CX(24,56) CX(25,57) CX(26,58) CX(27,59)
  CX(28,60) CX(29,61) CX(30,62) CX(31,63) CX(64,96) CX(65,97) CX(66,98) CX(67,99) CX(68,100)
  CX(69,101) CX(70,102) CX(71,103) CX(72,104) CX(73,105) CX(74,106) CX(75,107) CX(76,108)
  CX(77,109) CX(78,110) CX(79,111) CX(80,112) CX(81,113) CX(82,114) CX(83,115) CX(84,116)
  CX(85,117) CX(86,118) CX(87,119) CX(88,120) CX(89,121) CX(90,122) CX(91,123) CX(92,124)
  CX(93,125) CX(94,126) CX(95,127) CX(16,32) CX(17,33) CX(18,34) CX(19,35) CX(20,36) CX(21,37)
  CX(22,38) CX(23,39) CX(24,40) CX(25,41) CX(26,42) CX(27,43) CX(28,44) CX(29,45) CX(30,46)
  CX(31,47) CX(80,96) CX(81,97) CX(82,98) CX(83,99) CX(84,100) CX(85,101) CX(86,102) CX(87,103)
  CX(88,104) CX(89,105) CX(90,106) CX(91,107) CX(92,108) CX(93,109) CX(94,110) CX(95,111) CX(8,16)
  CX(9,17) CX(10,18) CX(11,19) CX(12,20) CX(13,21) CX(14,22) CX(15,23) CX(24,32) CX(25,33)
  CX(26,34) CX(27,35) CX(28,36) CX(29,37) CX(30,38) CX(31,39) CX(40,48) CX(41,49) CX(42,50)
  CX(43,51) CX(44,52) CX(45,53) CX(46,54) CX(47,55) CX(72,80) CX(73,81) CX(74,82) CX(75,83)
  CX(76,84) CX(77,85) CX(78,86) CX(79,87) CX(88,96) CX(89,97) CX(90,98) CX(91,99) CX(92,100)
  CX(93,101) CX(94,102) CX(95,103) CX(104,112) CX(105,113) CX(106,114) CX(107,115) CX(108,116)
  CX(109,117) CX(110,118) CX(111,119) CX(4,8) CX(5,9) CX(6,10) CX(7,11) CX(12,16) CX(13,17)
  CX(14,18) CX(15,19) CX(20,24) CX(21,25) CX(22,26) CX(23,27) CX(28,32) CX(29,33) CX(30,34)
  CX(31,35) CX(36,40) CX(37,41) CX(38,42) CX(39,43) CX(44,48) CX(45,49) CX(46,50) CX(47,51)
  CX(52,56) CX(53,57) CX(54,58) CX(55,59) CX(68,72) CX(69,73) CX(70,74) CX(71,75) CX(76,80)
  CX(77,81) CX(78,82) CX(79,83) CX(84,88) CX(85,89) CX(86,90) CX(87,91) CX(92,96) CX(93,97)
  CX(94,98) CX(95,99) CX(100,104) CX(101,105) CX(102,106) CX(103,107) CX(108,112) CX(109,113)
  CX(110,114) CX(111,115) CX(116,120) CX(117,121) CX(118,122) CX(119,123) CX(2,4) CX(3,5) CX(6,8)
  CX(7,9) CX(10,12) CX(11,13) CX(14,16) CX(15,17) CX(18,20) CX(19,21) CX(22,24) CX(23,25)
  CX(26,28) CX(27,29) CX(30,32) CX(31,33) CX(34,36) CX(35,37) CX(38,40) CX(39,41) CX(42,44)
  CX(43,45) CX(46,48) CX(47,49) CX(50,52) CX(51,53) CX(54,56) CX(55,57) CX(58,60) CX(59,61)
  CX(66,68) CX(67,69) CX(70,72) CX(71,73) CX(74,76) CX(75,77) CX(78,80) CX(79,81) CX(82,84)
  CX(83,85) CX(86,88) CX(87,89) CX(90,92) CX(91,93) CX(94,96) CX(95,97) CX(98,100) CX(99,101)
  CX(102,104) CX(103,105) CX(106,108) CX(107,109) CX(110,112) CX(111,113) CX(114,116) CX(115,117)
  CX(118,120) CX(119,121) CX(122,124) CX(123,125) CX(1,2) CX(3,4) CX(5,6) CX(7,8) CX(9,10)
  CX(11,12) CX(13,14) CX(15,16) CX(17,18) CX(19,20) CX(21,22) CX(23,24) CX(25,26) CX(27,28)
  CX(29,30) CX(31,32) CX(33,34) CX(35,36) CX(37,38) CX(39,40) CX(41,42) CX(43,44) CX(45,46)
  CX(47,48) CX(49,50) CX(51,52) CX(53,54) CX(55,56) CX(57,58) CX(59,60) CX(61,62) CX(65,66)
  CX(67,68) CX(69,70) CX(71,72) CX(73,74) CX(75,76) CX(77,78) CX(79,80) CX(81,82) CX(83,84)
  CX(85,86) CX(87,88) CX(89,90) CX(91,92) CX(93,94) CX(95,96) CX(97,98) CX(99,100) CX(101,102)
  CX(103,104) CX(105,106) CX(107,108) CX(109,110) CX(111,112) CX(113,114) CX(115,116) CX(117,118)
  CX(119,120) CX(121,122) CX(123,124) CX(125,126) CM(0,64) CM(1,65) CM(2,66) CM(3,67) CM(4,68)
  CM(5,69) CM(6,70) CM(7,71) CM(8,72) CM(9,73) CM(10,74) CM(11,75) CM(12,76) CM(13,77) CM(14,78)
  CM(15,79) CM(16,80) CM(17,81) CM(18,82) CM(19,83) CM(20,84) CM(21,85) CM(22,86) CM(23,87)
  CM(24,88) CM(25,89) CM(26,90) CM(27,91) CM(28,92) CM(29,93) CM(30,94) CM(31,95) CN(32,96)
  CN(33,97) CN(34,98) CN(35,99) CN(36,100) CN(37,101) CN(38,102) CN(39,103) CN(40,104) CN(41,105)
  CN(42,106) CN(43,107) CN(44,108) CN(45,109) CN(46,110) CN(47,111) CN(48,112) CN(49,113)
  CN(50,114) CN(51,115) CN(52,116) CN(53,117) CN(54,118) CN(55,119) CN(56,120) CN(57,121)
  CN(58,122) CN(59,123) CN(60,124) CN(61,125) CN(62,126) CN(63,127) CM(32,64) CM(33,65) CM(34,66)
  CM(35,67) CM(36,68) CM(37,69) CM(38,70) CM(39,71) CM(40,72) CM(41,73) CM(42,74) CM(43,75)
  CM(44,76) CM(45,77) CM(46,78) CM(47,79) CN(48,80) CN(49,81) CN(50,82) CN(51,83) CN(52,84)
  CN(53,85) CN(54,86) CN(55,87) CN(56,88) CN(57,89) CN(58,90) CN(59,91) CN(60,92) CN(61,93)
  CN(62,94) CN(63,95) CM(48,64) CM(49,65) CM(50,66) CM(51,67) CM(52,68) CM(53,69) CM(54,70)
  CM(55,71) CN(56,72) CN(57,73) CN(58,74) CN(59,75) CN(60,76) CN(61,77) CN(62,78) CN(63,79)
  CM(56,64) CM(57,65) CM(58,66) CM(59,67) CN(60,68) CN(61,69) CN(62,70) CN(63,71) CM(60,64)
  CM(61,65) CN(62,66) CN(63,67) CM(62,64) CN(63,65) CX(63,64)
}
/* ---- end of generated networks ---- */
#undef CX
#undef CN
#undef CM

/* b[i] = a[i + s] (top keys past the end) for a runtime shift s < N: a
 * barrel shifter of log2(N) conditional constant shifts. */
template <int N>
__device__ __forceinline__ void shift_down(const int32_t (&a)[N], int64_t s, int32_t (&b)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) b[i] = a[i];
#pragma unroll
  for (int bit = 1; bit < N; bit <<= 1)
    if (s & bit) {
#pragma unroll
      for (int i = 0; i < N; ++i) b[i] = i + bit < N ? b[i + bit] : kTopKey;
    }
}

__device__ __forceinline__ double meamed_distance(float x, double m2) {
  return ragg_coord_distance(x, m2);
}

/* The rule on one coordinate's keys a (the n values at ranks pb .. pb + n - 1
 * once sorted); the network runs here. Same values, same double operations
 * in the same order as rules/coordinate.h. */
template <int N>
__device__ __forceinline__ double network_reduce(int32_t (&a)[N], const CoordArgs &c,
                                                 int64_t pb) {
  const int64_t n = c.n;
  if (c.rule == RAGG_RULE_MEDIAN) {
    net_mid<N>(a);
    double lo = (double)key_float(a[N / 2 - 1]);
    if (n & 1) return lo;
    return (lo + (double)key_float(a[N / 2])) * 0.5;
  }
  net_sort<N>(a);
  if (c.rule == RAGG_RULE_TRIMMED_MEAN) {
    double s = 0.0;
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i >= pb + c.f && i < pb + n - c.f) s += (double)key_float(a[i]);
    return s / (double)(n - 2 * c.f);
  }
  if constexpr (N <= 64) {
    /* MeaMed (and Bulyan's step): the keep values closest to the median.
     * The distances |2x - 2m| fall then rise along the sorted values, so the
     * keep smallest form a window and the keep-th smallest distance t is the
     * least, over the windows, of the larger distance at the window's two
     * ends. */
    double m2 = (n & 1) ? 2.0 * (double)key_float(a[N / 2 - 1])
                        : (double)key_float(a[N / 2 - 1]) + (double)key_float(a[N / 2]);
    const int64_t keep = c.keep;
    int32_t last[N]; /* last[s] = a[s + keep - 1]: the window's far end */
    shift_down(a, keep - 1, last);
    double t = 1.0 / 0.0;
#pragma unroll
    for (int s = 0; s < N; ++s)
      if (s >= pb && s + keep <= pb + n) {
        double dl = meamed_distance(key_float(a[s]), m2),
               dr = meamed_distance(key_float(last[s]), m2);
        double w = dl < dr ? dr : dl;
        if (w < t) t = w;
      }
    double below = 0.0, tied = 0.0;
    int64_t nbelow = 0, ntied = 0;
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i >= pb && i < pb + n) {
        float x = key_float(a[i]);
        double di = meamed_distance(x, m2);
        if (di < t) {
          below += (double)x;
          ++nbelow;
        } else if (di == t) {
          tied += (double)x;
          ++ntied;
        }
      }
    double s = below;
    if (ntied > 0) s += (double)(keep - nbelow) * (tied / (double)ntied);
    return s / (double)keep;
  } else {
    return 0.0; /* MeaMed above 64 rows takes the tile kernel */
  }
}

/* Coordinates per thread: V consecutive ones, loaded V * size bytes at a
 * time from each row when every row is aligned to that (c.vec). */
template <int N>
__host__ __device__ constexpr int net_vec() {
  return N <= 16 ? 4 : N == 32 ? 2 : 1;
}

template <ragg_dtype_t T>
__device__ __forceinline__ float from_bits(unsigned short u) {
  if (T == RAGG_F16) return __half2float(__ushort_as_half(u));
  return __uint_as_float((unsigned)u << 16);
}

/* x[v] = row[k0 + v], v < V, in one load of V elements (k0 % V == 0). */
template <int V, ragg_dtype_t T>
__device__ __forceinline__ void load_vec(const char *row, int64_t k0, float (&x)[V]) {
  if constexpr (T == RAGG_F32) {
    if constexpr (V == 4) {
      float4 q = __ldg((const float4 *)row + k0 / 4);
      x[0] = q.x, x[1] = q.y, x[2] = q.z, x[3] = q.w;
    } else if constexpr (V == 2) {
      float2 q = __ldg((const float2 *)row + k0 / 2);
      x[0] = q.x, x[1] = q.y;
    } else {
      x[0] = __ldg((const float *)row + k0);
    }
  } else {
    if constexpr (V == 4) {
      uint2 q = __ldg((const uint2 *)row + k0 / 4);
      x[0] = from_bits<T>((unsigned short)(q.x & 0xFFFFu));
      x[1] = from_bits<T>((unsigned short)(q.x >> 16));
      x[2] = from_bits<T>((unsigned short)(q.y & 0xFFFFu));
      x[3] = from_bits<T>((unsigned short)(q.y >> 16));
    } else if constexpr (V == 2) {
      unsigned q = __ldg((const unsigned *)row + k0 / 2);
      x[0] = from_bits<T>((unsigned short)(q & 0xFFFFu));
      x[1] = from_bits<T>((unsigned short)(q >> 16));
    } else {
      x[0] = from_bits<T>(__ldg((const unsigned short *)row + k0));
    }
  }
}

/* rp: the N row addresses (ranks past n repeat row n - 1, a valid address):
 * every load is unconditional, so all N * V are in flight at once, and
 * ranks past n become padding keys by a select after the load. A group
 * that is unaligned or runs past d loads element by element (clamped to
 * d - 1; those coordinates are not stored). */
template <int N, int V, ragg_dtype_t T>
__device__ __forceinline__ void network_load(const char *const *rp, const CoordArgs &c,
                                             int64_t k0, bool vec, int32_t (&a)[V][N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    float x[V];
    if (vec) {
      load_vec<V, T>(rp[i], k0, x);
    } else {
#pragma unroll
      for (int v = 0; v < V; ++v) {
        int64_t k = k0 + v < c.d ? k0 + v : c.d - 1;
        x[v] = load_as<T>(rp[i], k);
      }
    }
    const int32_t pad = i < (c.n + N) / 2 ? kBottomKey : kTopKey; /* i >= n: i - n < pb */
#pragma unroll
    for (int v = 0; v < V; ++v) a[v][i] = i < c.n ? float_key(x[v]) : pad;
  }
}

template <int N, class R>
__global__ void __launch_bounds__(kNetThreads)
    coord_network_kernel(const __grid_constant__ R rows, CoordArgs c, bool vec_rows) {
  constexpr int V = net_vec<N>();
  __shared__ const char *rp[N];
  for (int t = threadIdx.x; t < N; t += kNetThreads) {
    int64_t i = (int64_t)t < c.n ? (int64_t)t : c.n - 1;
    rp[t] = (const char *)rows.row(c.idx ? __ldg(c.idx + i) : i);
  }
  __syncthreads();
  const int64_t pb = (N - c.n) / 2;
  const int64_t groups = ceil_div(c.d, V);
  for (int64_t g = (int64_t)blockIdx.x * kNetThreads + threadIdx.x; g < groups;
       g += (int64_t)gridDim.x * kNetThreads) {
    const int64_t k0 = g * V;
    const bool vec = vec_rows && k0 + V <= c.d;
    int32_t a[V][N];
    if (c.in_t == RAGG_F32)
      network_load<N, V, RAGG_F32>(rp, c, k0, vec, a);
    else if (c.in_t == RAGG_F16)
      network_load<N, V, RAGG_F16>(rp, c, k0, vec, a);
    else
      network_load<N, V, RAGG_BF16>(rp, c, k0, vec, a);
#pragma unroll
    for (int v = 0; v < V; ++v)
      if (k0 + v < c.d) store_value(c.out_t, c.out, k0 + v, network_reduce<N>(a[v], c, pb));
  }
}

/* ---- run 2's bitonic kernel ---- */

template <int N>
__device__ __forceinline__ void bitonic_sort(int32_t (&a)[N]) {
#pragma unroll
  for (int size = 2; size <= N; size <<= 1)
#pragma unroll
    for (int stride = size / 2; stride > 0; stride >>= 1)
#pragma unroll
      for (int i = 0; i < N; ++i) {
        const int j = i ^ stride;
        if (j > i) {
          int32_t lo = min(a[i], a[j]), hi = max(a[i], a[j]);
          const bool up = (i & size) == 0;
          a[i] = up ? lo : hi;
          a[j] = up ? hi : lo;
        }
      }
}

/* The value of rank r (runtime) of the sorted keys, by predicated selects. */
template <int N>
__device__ __forceinline__ float rank_value(const int32_t (&a)[N], int64_t r) {
  int32_t k = kTopKey;
#pragma unroll
  for (int i = 0; i < N; ++i)
    if (i == r) k = a[i];
  return key_float(k);
}

template <int N>
__device__ __forceinline__ double bitonic_reduce(const int32_t (&a)[N], const CoordArgs &c) {
  const int64_t n = c.n;
  if (c.rule == RAGG_RULE_MEDIAN) {
    double lo = (double)rank_value(a, (n - 1) / 2);
    if (n & 1) return lo;
    return (lo + (double)rank_value(a, n / 2)) * 0.5;
  }
  if (c.rule == RAGG_RULE_TRIMMED_MEAN) {
    double s = 0.0;
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i >= c.f && i < n - c.f) s += (double)key_float(a[i]);
    return s / (double)(n - 2 * c.f);
  }
  /* MeaMed (and Bulyan's step): the keep values closest to the median. The
   * distances |2x - 2m| fall then rise along the sorted values, so the keep
   * smallest form a window and the keep-th smallest distance t is the least,
   * over the windows, of the larger distance at the window's two ends. */
  double m2 = (n & 1) ? 2.0 * (double)rank_value(a, n / 2)
                      : (double)rank_value(a, n / 2 - 1) + (double)rank_value(a, n / 2);
  const int64_t keep = c.keep;
  int32_t last[N]; /* last[s] = a[s + keep - 1]: the window's far end */
  shift_down(a, keep - 1, last);
  double t = 1.0 / 0.0;
#pragma unroll
  for (int s = 0; s < N; ++s)
    if (s + keep <= n) {
      double dl = meamed_distance(key_float(a[s]), m2), dr = meamed_distance(key_float(last[s]), m2);
      double w = dl < dr ? dr : dl;
      if (w < t) t = w;
    }
  double below = 0.0, tied = 0.0;
  int64_t nbelow = 0, ntied = 0;
#pragma unroll
  for (int i = 0; i < N; ++i)
    if (i < n) {
      float x = key_float(a[i]);
      double di = meamed_distance(x, m2);
      if (di < t) {
        below += (double)x;
        ++nbelow;
      } else if (di == t) {
        tied += (double)x;
        ++ntied;
      }
    }
  double s = below;
  if (ntied > 0) s += (double)(keep - nbelow) * (tied / (double)ntied);
  return s / (double)keep;
}

/* The previous (run 2) one-coordinate kernel, kept where run 3 measured it
 * faster: full bitonic sort, top padding, runtime-rank selects.
 * rp: the N row addresses (ranks past n repeat row n - 1, a valid address):
 * every load is unconditional, so all N are in flight at once, and ranks
 * past n become top keys by a select after the load. */
template <int N, ragg_dtype_t T>
__device__ __forceinline__ void bitonic_load(const char *const *rp, int64_t n, int64_t k,
                                             int32_t (&a)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    int32_t key = float_key(load_as<T>(rp[i], k));
    a[i] = i < n ? key : kTopKey;
  }
}

template <int N, class R>
__global__ void __launch_bounds__(kNetThreads)
    coord_bitonic_kernel(const __grid_constant__ R rows, CoordArgs c) {
  __shared__ const char *rp[N];
  if (threadIdx.x < N) {
    int64_t i = (int64_t)threadIdx.x < c.n ? (int64_t)threadIdx.x : c.n - 1;
    rp[threadIdx.x] = (const char *)rows.row(c.idx ? __ldg(c.idx + i) : i);
  }
  __syncthreads();
  for (int64_t k = (int64_t)blockIdx.x * kNetThreads + threadIdx.x; k < c.d;
       k += (int64_t)gridDim.x * kNetThreads) {
    int32_t a[N];
    if (c.in_t == RAGG_F32)
      bitonic_load<N, RAGG_F32>(rp, c.n, k, a);
    else if (c.in_t == RAGG_F16)
      bitonic_load<N, RAGG_F16>(rp, c.n, k, a);
    else
      bitonic_load<N, RAGG_BF16>(rp, c.n, k, a);
    bitonic_sort(a);
    store_value(c.out_t, c.out, k, bitonic_reduce(a, c));
  }
}

/* ---- shared-memory (or workspace) tiles -------------------------------- */

struct TileShape {
  int np;       /* n rounded up to a power of two */
  int log_half; /* log2(np / 2) */
  int cols;     /* coordinates per tile */
  int ld;       /* keys between columns */
  bool in_smem;
};

TileShape tile_shape(int64_t n) {
  TileShape s;
  int64_t np = 2;
  while (np < n) np <<= 1;
  s.log_half = 0;
  while ((int64_t)2 << s.log_half < np) ++s.log_half;
  int64_t ld = np + 1; /* odd stride: columns fall on different banks */
  int64_t cols = (kTileSmemBytes / 4) / ld;
  if (cols > 32) cols = 32;
  s.in_smem = cols >= 1;
  if (!s.in_smem) cols = 1;
  s.np = (int)np; /* n < 2^31 (ragg_aggregate's limits) */
  s.ld = (int)ld;
  s.cols = (int)cols;
  return s;
}
constexpr int64_t kScratchBlocks = 264;

/* A tile: the keys of `cols` coordinates, np (a power of two) a column, in
 * shared memory (or the workspace); indices within it are 32-bit, and the
 * network's positions come from shifts and masks (64-bit divisions cost
 * more than the comparisons). */
template <class R>
__global__ void __launch_bounds__(kTileThreads)
    coord_tile_kernel(const __grid_constant__ R rows, CoordArgs c, TileShape s, int32_t *gkeys,
                      int64_t *counts) {
  extern __shared__ int32_t smem_keys[];
  int32_t *keys = s.in_smem ? smem_keys : gkeys + (int64_t)blockIdx.x * s.ld * s.cols;
  const int n = (int)c.n, cols = s.cols, np = s.np, ld = s.ld, half = np / 2;
  const int pairs = half * cols;
  for (int64_t k0 = (int64_t)blockIdx.x * cols; k0 < c.d; k0 += (int64_t)gridDim.x * cols) {
    for (int e = threadIdx.x; e < np * cols; e += kTileThreads) {
      int i = e / cols, col = e - i * cols;
      int64_t k = k0 + col;
      int32_t key = kTopKey;
      if (i < n && k < c.d)
        key = float_key(load_value(c.in_t, rows.row(c.idx ? __ldg(c.idx + i) : i), k));
      keys[col * ld + i] = key;
    }
    __syncthreads();
    for (int size = 2; size <= np; size <<= 1)
      for (int ls = __ffs(size) - 2; ls >= 0; --ls) { /* stride = 2^ls = size/2 .. 1 */
        const int stride = 1 << ls;
        for (int e = threadIdx.x; e < pairs; e += kTileThreads) {
          int col = e >> s.log_half, p = e & (half - 1);
          int i = ((p >> ls) << (ls + 1)) | (p & (stride - 1)), j = i + stride;
          int32_t *v = keys + col * ld;
          int32_t x = v[i], y = v[j];
          bool up = (i & size) == 0;
          if ((x > y) == up) {
            v[i] = y;
            v[j] = x;
          }
        }
        __syncthreads();
      }
    if (counts) {
      /* the loop bound is a multiple of the block, so whole warps take part */
      int work = (int)ceil_div((int64_t)n * cols, kTileThreads) * kTileThreads;
      for (int e = threadIdx.x; e < work; e += kTileThreads) {
        int i = e / cols, col = e - i * cols;
        int64_t k = k0 + col;
        bool out_of_range = false;
        if (i < n && k < c.d) {
          const int32_t *v = keys + col * ld;
          int32_t key = float_key(load_value(c.in_t, rows.row(i), k));
          out_of_range = key < v[c.f] || key > v[n - 1 - c.f];
        }
        /* one atomic per row and warp: lanes of a warp mostly share i */
        unsigned voters = __ballot_sync(0xFFFFFFFFu, out_of_range);
        if (out_of_range) {
          unsigned same = __match_any_sync(voters, (unsigned)i);
          if ((threadIdx.x & 31) == __ffs(same) - 1)
            atomicAdd((unsigned long long *)(counts + i), (unsigned long long)__popc(same));
        }
      }
      __syncthreads();
    }
    /* the sorted keys back to floats, in place, by every thread */
    for (int e = threadIdx.x; e < n * cols; e += kTileThreads) {
      int col = e / n, i = e - col * n;
      int32_t *v = keys + col * ld + i;
      *(float *)v = key_float(*v);
    }
    __syncthreads();
    for (int col = threadIdx.x; col < cols; col += kTileThreads) {
      int64_t k = k0 + col;
      if (k >= c.d) continue;
      const float *f = (const float *)(keys + col * ld);
      double r = c.rule == RAGG_RULE_MEDIAN         ? ragg_coord_median(f, n)
                 : c.rule == RAGG_RULE_TRIMMED_MEAN ? ragg_coord_trimmed(f, n, c.f)
                                                    : ragg_coord_meamed(f, n, c.keep);
      store_value(c.out_t, c.out, k, r);
    }
    __syncthreads();
  }
}

template <int N>
cudaError_t launch_network(const RowSource &src, const CoordArgs &c, cudaStream_t stream) {
  constexpr int V = net_vec<N>();
  const bool vec = V > 1 && rows_aligned(src, (uintptr_t)V * ragg_dtype_size(src.dtype));
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    coord_network_kernel<N, R>
        <<<grid_for(ceil_div(c.d, V), kNetThreads), kNetThreads, 0, stream>>>(rows, c, vec);
    return cudaGetLastError();
  });
}

template <int N>
cudaError_t launch_bitonic(const RowSource &src, const CoordArgs &c, cudaStream_t stream) {
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    coord_bitonic_kernel<N, R><<<grid_for(c.d, kNetThreads), kNetThreads, 0, stream>>>(rows, c);
    return cudaGetLastError();
  });
}

}  // namespace

size_t coord_scratch_bytes(int64_t n, int64_t d) {
  (void)d;
  TileShape s = tile_shape(n);
  return s.in_smem ? 0 : sizeof(int32_t) * (size_t)s.ld * (size_t)s.cols * (size_t)kScratchBlocks;
}

cudaError_t launch_coordinate(const RowSource &src, int64_t n, int64_t d, const int64_t *idx,
                              const CoordOp &op, ragg_dtype_t out_t, void *out, int64_t *counts,
                              void *scratch, cudaStream_t stream) {
  CoordArgs c{n, d, idx, op.rule, op.f, op.keep, src.dtype, out_t, out};
  if (!counts) {
    /* Run 3 (H200): the pruned/odd-even networks won at n <= 8 and
     * 64 < n <= 128 and lost elsewhere (n = 64 f32 median 243 -> 839 us,
     * MeaMed everywhere): run 2's bitonic kernel keeps those buckets. */
    const bool meamed = op.rule == RAGG_RULE_MEAMED;
    if (n <= 8 && !meamed) return launch_network<8>(src, c, stream);
    if (n <= 8) return launch_bitonic<8>(src, c, stream);
    if (n <= 16) return launch_bitonic<16>(src, c, stream);
    if (n <= 32) return launch_bitonic<32>(src, c, stream);
    if (n <= 64) return launch_bitonic<64>(src, c, stream);
    if (n <= 128 && !meamed) return launch_network<128>(src, c, stream);
  } else {
    cudaError_t e = cudaMemsetAsync(counts, 0, sizeof(int64_t) * (size_t)n, stream);
    if (e != cudaSuccess) return e;
  }
  /* the tile's 32-bit indices; beyond this, its workspace (264 tiles of n
   * keys) could not be allocated anyway */
  if (n > ((int64_t)1 << 30)) return cudaErrorInvalidValue;
  TileShape s = tile_shape(n);
  size_t smem = s.in_smem ? sizeof(int32_t) * (size_t)s.ld * (size_t)s.cols : 0;
  int64_t tiles = ceil_div(d, s.cols);
  unsigned grid = (unsigned)std::min<int64_t>(s.in_smem ? 65535 * 8 : kScratchBlocks, tiles);
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    cudaError_t e = cudaFuncSetAttribute(coord_tile_kernel<R>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         kTileSmemBytes);
    if (e != cudaSuccess) return e;
    coord_tile_kernel<R><<<grid, kTileThreads, smem, stream>>>(rows, c, s, (int32_t *)scratch,
                                                               counts);
    return cudaGetLastError();
  });
}

}  // namespace ragg_cuda
