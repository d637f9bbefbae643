/*
 * ABI probe, user-mode view: the KS proxy (ksproxy.h) types, enumerations and interface ids.
 * See probe.h for how values are extracted.
 */
#include <windows.h>
#include <dshow.h>
#include <ks.h>
#include <ksproxy.h>
#include "probe.h"

void probe_proxy(void) {
  P_CONST(KsAllocatorMode_User); P_CONST(KsAllocatorMode_Kernel);
  P_CONST(FramingProp_Uninitialized); P_CONST(FramingProp_None); P_CONST(FramingProp_Old);
  P_CONST(FramingProp_Ex);
  P_CONST(Framing_Cache_Update); P_CONST(Framing_Cache_ReadLast); P_CONST(Framing_Cache_ReadOrig);
  P_CONST(Framing_Cache_Write);
  P_CONST(AllocatorStrategy_DontCare); P_CONST(AllocatorStrategy_MinimizeNumberOfFrames);
  P_CONST(AllocatorStrategy_MinimizeFrameSize); P_CONST(AllocatorStrategy_MinimizeNumberOfAllocators);
  P_CONST(AllocatorStrategy_MaximizeSpeed);
  P_CONST(PipeFactor_None); P_CONST(PipeFactor_UserModeUpstream); P_CONST(PipeFactor_UserModeDownstream);
  P_CONST(PipeFactor_MemoryTypes); P_CONST(PipeFactor_Flags); P_CONST(PipeFactor_PhysicalRanges);
  P_CONST(PipeFactor_OptimalRanges); P_CONST(PipeFactor_FixedCompression);
  P_CONST(PipeFactor_UnknownCompression); P_CONST(PipeFactor_Buffers); P_CONST(PipeFactor_Align);
  P_CONST(PipeFactor_PhysicalEnd); P_CONST(PipeFactor_LogicalEnd);
  P_CONST(PipeState_DontCare); P_CONST(PipeState_RangeNotFixed); P_CONST(PipeState_RangeFixed);
  P_CONST(PipeState_CompressionUnknown); P_CONST(PipeState_Finalized);
  P_CONST(Pipe_Allocator_None); P_CONST(Pipe_Allocator_FirstPin); P_CONST(Pipe_Allocator_LastPin);
  P_CONST(Pipe_Allocator_MiddlePin);
  P_CONST(KS_MemoryTypeDontCare); P_CONST(KS_MemoryTypeKernelPaged);
  P_CONST(KS_MemoryTypeKernelNonPaged); P_CONST(KS_MemoryTypeDeviceHostMapped);
  P_CONST(KS_MemoryTypeDeviceSpecific); P_CONST(KS_MemoryTypeUser); P_CONST(KS_MemoryTypeAnyHost);

  P_SIZE(OPTIMAL_WEIGHT_TOTALS);
  P_OFF(OPTIMAL_WEIGHT_TOTALS, MinTotalNominator); P_OFF(OPTIMAL_WEIGHT_TOTALS, MaxTotalNominator);
  P_OFF(OPTIMAL_WEIGHT_TOTALS, TotalDenominator);
  P_SIZE(PIPE_DIMENSIONS);
  P_OFF(PIPE_DIMENSIONS, AllocatorPin); P_OFF(PIPE_DIMENSIONS, MaxExpansionPin);
  P_OFF(PIPE_DIMENSIONS, EndPin);
  P_SIZE(PIPE_TERMINATION);
  P_OFF(PIPE_TERMINATION, Flags); P_OFF(PIPE_TERMINATION, OutsideFactors);
  P_OFF(PIPE_TERMINATION, Weigth); P_OFF(PIPE_TERMINATION, PhysicalRange);
  P_OFF(PIPE_TERMINATION, OptimalRange); P_OFF(PIPE_TERMINATION, Compression);
  P_SIZE(ALLOCATOR_PROPERTIES_EX);
  P_OFF(ALLOCATOR_PROPERTIES_EX, cBuffers); P_OFF(ALLOCATOR_PROPERTIES_EX, cbBuffer);
  P_OFF(ALLOCATOR_PROPERTIES_EX, cbAlign); P_OFF(ALLOCATOR_PROPERTIES_EX, cbPrefix);
  P_OFF(ALLOCATOR_PROPERTIES_EX, MemoryType); P_OFF(ALLOCATOR_PROPERTIES_EX, BusType);
  P_OFF(ALLOCATOR_PROPERTIES_EX, State); P_OFF(ALLOCATOR_PROPERTIES_EX, Input);
  P_OFF(ALLOCATOR_PROPERTIES_EX, Output); P_OFF(ALLOCATOR_PROPERTIES_EX, Strategy);
  P_OFF(ALLOCATOR_PROPERTIES_EX, Flags); P_OFF(ALLOCATOR_PROPERTIES_EX, Weight);
  P_OFF(ALLOCATOR_PROPERTIES_EX, LogicalMemoryType); P_OFF(ALLOCATOR_PROPERTIES_EX, AllocatorPlace);
  P_OFF(ALLOCATOR_PROPERTIES_EX, Dimensions); P_OFF(ALLOCATOR_PROPERTIES_EX, PhysicalRange);
  P_OFF(ALLOCATOR_PROPERTIES_EX, PrevSegment); P_OFF(ALLOCATOR_PROPERTIES_EX, CountNextSegments);
  P_OFF(ALLOCATOR_PROPERTIES_EX, NextSegments); P_OFF(ALLOCATOR_PROPERTIES_EX, InsideFactors);
  P_OFF(ALLOCATOR_PROPERTIES_EX, NumberPins);

  GUID_STATIC(IID_IKsAllocator);
  GUID_STATIC(IID_IKsAllocatorEx);
  GUID_STATIC(IID_IKsPinPipe);
  GUID_STATIC(IID_IKsPin);
}
